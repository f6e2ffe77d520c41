// Issue 19's events (CONTRACT §1): outbound links, downloads, 404 pages, engaged time, web vitals
// and the time zone of page views.
import { test } from "node:test";
import assert from "node:assert/strict";
import { load } from "./harness.mjs";

const ofType = (t, type) => t.events().filter((e) => e.event_type === type);

// A page whose visibility the test sets, and whose clicks never navigate (jsdom cannot).
function page(opts = {}) {
  let state = "visible";
  const observers = {};
  const t = load({
    ...opts,
    before: (w) => {
      Object.defineProperty(w.document, "visibilityState", { get: () => state });
      // the browser's PerformanceObserver, fed by the test
      w.PerformanceObserver = class {
        constructor(cb) { this.cb = cb; }
        observe(o) { observers[o.type] = (entries) => this.cb({ getEntries: () => entries }); }
      };
      w.performance.getEntriesByType = (type) => (type === "navigation" ? [{ responseStart: 312.5 }] : []);
      if (opts.before) opts.before(w);
    },
  });
  t.w.document.addEventListener("click", (e) => e.preventDefault());
  const click = (id) => t.w.document.getElementById(id).dispatchEvent(
    new t.w.MouseEvent("click", { bubbles: true, cancelable: true }));
  const hide = () => { state = "hidden"; t.w.document.dispatchEvent(new t.w.Event("visibilitychange")); };
  const show = () => { state = "visible"; t.w.document.dispatchEvent(new t.w.Event("visibilitychange")); };
  return { ...t, click, hide, show, observers };
}

const LINKS = `
  <a id="out" href="https://GitHub.com/owner/repo?ref=x#top"><span id="inner">repo</span></a>
  <a id="same" href="/pricing">pricing</a>
  <a id="mail" href="mailto:hello@example.com">mail</a>
  <a id="pdf" href="/files/Report.PDF?download=1#p2">report</a>
  <a id="book" href="https://cdn.example.net/books/guide.epub">guide</a>
  <a id="cta" href="https://calendly.com/x" data-analytics-cta="book_call">book</a>`;

test("outbound links: the host only, not the path or query; same-site and mailto links are not", () => {
  const t = page({ html: LINKS });
  for (const id of ["inner", "same", "mail", "cta"]) t.click(id);
  t.flush();
  assert.deepEqual(ofType(t, "outbound").map((e) => e.props), [{ host: "github.com" }, { host: "calendly.com" }]);
  assert.equal(ofType(t, "cta_click").length, 1, "a CTA that is also an outbound link is both");
  assert.equal(ofType(t, "outbound")[0].page_path, "/blog/post");
});

test("downloads: by extension, lower case, the file's path without query or fragment", () => {
  const t = page({ html: LINKS });
  t.click("pdf");
  t.click("book");  // epub is not in the default list: another host's link
  t.flush();
  assert.deepEqual(ofType(t, "download").map((e) => e.props), [{ ext: "pdf", file: "/files/Report.PDF" }]);
  assert.deepEqual(ofType(t, "outbound").map((e) => e.props), [{ host: "cdn.example.net" }]);
});

test("downloads: the list of extensions is the script's data-downloads", () => {
  const t = page({ html: LINKS, scriptAttrs: { "data-downloads": "epub,mobi" } });
  t.click("pdf");
  t.click("book");
  t.flush();
  assert.deepEqual(ofType(t, "download").map((e) => e.props), [{ ext: "epub", file: "/books/guide.epub" }]);
  assert.equal(ofType(t, "outbound").length, 0, "a download is not also an outbound click");
});

test("404 pages: a page marked with <meta name=analytics:404> sends not_found after its page view", () => {
  const t = page({ html: '<meta name="analytics:404">' });
  t.flush();
  assert.deepEqual(t.events().map((e) => e.event_type), ["page_view", "not_found"]);
  const [nf] = ofType(t, "not_found");
  assert.equal(nf.page_path, "/blog/post");
  assert.equal(nf.props, undefined, "on a page load the handler reads the referring page from referrer");
  assert.equal(nf.referrer, "https://www.google.com/");
  const ok = page();
  ok.flush();
  assert.equal(ofType(ok, "not_found").length, 0);
});

test("404 pages in an SPA: the previous route is the referring page", () => {
  const t = page();
  const meta = t.w.document.createElement("meta");
  meta.setAttribute("name", "analytics:404");
  t.w.history.pushState({}, "", "/no-such-page");
  t.w.document.head.appendChild(meta);
  t.runTimeouts();
  t.flush();
  const [nf] = ofType(t, "not_found");
  assert.equal(nf.page_path, "/no-such-page");
  assert.deepEqual(nf.props, { from: "/blog/post" });
});

test("engaged time: visible seconds only, sent each time the page is hidden, never twice", () => {
  const t = page();
  t.tick(12);
  t.hide();
  t.tick(100);  // hidden: not engaged
  t.show();
  t.tick(3);
  t.hide();
  t.hide();  // nothing new to report
  t.w.dispatchEvent(new t.w.Event("pagehide"));
  const eng = ofType(t, "engagement");
  assert.deepEqual(eng.map((e) => e.props.seconds), [12, 3]);
  assert.ok(eng.every((e) => e.page_path === "/blog/post"));
  assert.ok(t.sent.every((s) => s.via === "beacon"));
});

test("engaged time of an SPA page is sent when the route changes, under its own path", () => {
  const t = page();
  t.tick(7);
  t.w.history.pushState({}, "", "/pricing");
  t.runTimeouts();
  t.tick(2);
  t.hide();
  assert.deepEqual(ofType(t, "engagement").map((e) => [e.page_path, e.props.seconds]),
    [["/blog/post", 7], ["/pricing", 2]]);
});

test("web vitals: LCP, INP, CLS (largest session window) and TTFB, once per page load, when hidden", () => {
  const t = page();
  const o = t.observers;
  assert.deepEqual(Object.keys(o).sort(), ["event", "largest-contentful-paint", "layout-shift"]);
  o["largest-contentful-paint"]([{ startTime: 900 }, { startTime: 1830.2 }]);
  o.event([{ interactionId: 1, duration: 48 }, { interactionId: 0, duration: 500 },  // not an interaction
    { interactionId: 2, duration: 232 }, { interactionId: 3, duration: 64 }]);
  o["layout-shift"]([
    { startTime: 100, value: 0.05 }, { startTime: 600, value: 0.04 },  // one window: 0.09
    { startTime: 700, value: 0.5, hadRecentInput: true },  // after input: not counted
    { startTime: 3000, value: 0.06 }, { startTime: 3500, value: 0.01 }]);  // a window of 0.07
  t.hide();
  t.show();
  o["largest-contentful-paint"]([{ startTime: 5000 }]);
  t.hide();
  const vitals = ofType(t, "web_vitals");
  assert.equal(vitals.length, 1);
  const v = vitals[0].props;
  assert.deepEqual([v.lcp, v.inp, v.ttfb], [1830.2, 232, 312.5]);
  assert.ok(Math.abs(v.cls - 0.09) < 1e-9, `cls ${v.cls}`);
  assert.equal(vitals[0].page_path, "/blog/post");
});

test("web vitals: a browser without PerformanceObserver sends what it has (TTFB), and nothing breaks", () => {
  const t = load({ before: (w) => {
    Object.defineProperty(w.document, "visibilityState", { get: () => "hidden" });
    w.PerformanceObserver = undefined;
    w.performance.getEntriesByType = () => [{ responseStart: 80 }];
  } });
  t.w.document.dispatchEvent(new t.w.Event("visibilitychange"));
  assert.deepEqual(ofType(t, "web_vitals").map((e) => e.props), [{ ttfb: 80 }]);
});

test("the time zone goes with page views only", () => {
  const t = page({ html: LINKS });
  t.click("out");
  t.flush();
  const [pv, out] = t.events();
  assert.equal(pv.time_zone, Intl.DateTimeFormat().resolvedOptions().timeZone);
  assert.ok(pv.time_zone.length > 0);
  assert.equal(out.time_zone, undefined);
});
