import { test } from "node:test";
import assert from "node:assert/strict";
import { load } from "./harness.mjs";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const types = (evs) => evs.map((e) => e.event_type);

const CONSENT = { "data-consent": "granted" };

// Counts every access to device storage (localStorage, sessionStorage, IndexedDB, cookies,
// Cache Storage) made after the page set itself up.
function watchStorage(w) {
  const touched = [];
  for (const name of ["localStorage", "sessionStorage", "indexedDB", "caches"]) {
    const desc = Object.getOwnPropertyDescriptor(w, name) || Object.getOwnPropertyDescriptor(Object.getPrototypeOf(w), name);
    Object.defineProperty(w, name, { configurable: true, get() { touched.push(name); return desc && desc.get ? desc.get.call(w) : undefined; } });
  }
  const cookie = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Object.getPrototypeOf(w.document)), "cookie");
  Object.defineProperty(w.document, "cookie", { configurable: true,
    get() { touched.push("cookie"); return cookie.get.call(w.document); },
    set(v) { touched.push("cookie"); cookie.set.call(w.document, v); } });
  return touched;
}

test("default mode: a page view with the contract's fields and UTM tags, and no id", () => {
  const t = load({ htmlAttrs: 'data-analytics-experiment="cta_copy" data-analytics-variant="b"' });
  t.flush();
  const [pv] = t.events();
  assert.equal(pv.event_type, "page_view");
  assert.match(pv.event_id, UUID);
  assert.equal(pv.session_id, undefined);
  assert.equal(pv.visitor_id, undefined);
  assert.equal(pv.page_path, "/blog/post");
  assert.equal(pv.page_host, "www.example.com");
  assert.equal(pv.page_title, "Post");
  assert.equal(pv.referrer, "https://www.google.com/");
  assert.equal(pv.utm_source, "News");
  assert.equal(pv.utm_medium, "email");
  assert.deepEqual(pv.props, { experiment: "cta_copy", variant: "b" });
  assert.ok(!Number.isNaN(Date.parse(pv.event_ts)) && pv.sent_ts >= pv.event_ts);
  assert.equal(t.sent[0].endpoint, "https://collector.example.com/v1/events");
  assert.equal(t.sent[0].opts.keepalive, true);
  assert.equal(t.sent[0].opts.credentials, "omit");
  assert.equal(t.w.document.cookie, "", "no cookies");
  assert.equal(t.w.localStorage.length, 0);
  assert.equal(t.w.sessionStorage.length, 0);
});

test("default mode never reads or writes device storage, whatever happens on the page", async () => {
  let touched;
  let state = "visible";
  const t = load({ fetchFails: true, html: '<button id="cta" data-analytics-cta="x">x</button><form id="f"><input id="i"></form>',
    before: (w) => {
      touched = watchStorage(w);
      Object.defineProperty(w.document, "visibilityState", { get: () => state });
    } });
  const d = t.w.document;
  t.tick(31);
  d.getElementById("cta").dispatchEvent(new t.w.MouseEvent("click", { bubbles: true }));
  d.getElementById("i").dispatchEvent(new t.w.Event("input", { bubbles: true }));
  d.getElementById("f").dispatchEvent(new t.w.Event("submit", { bubbles: true, cancelable: true }));
  t.w.history.pushState({}, "", "/pricing");
  t.runTimeouts();
  t.w.analytics.track("x", { a: 1 });
  t.flush();
  await new Promise((r) => setImmediate(r));   // the failed fetch: kept in memory only
  t.w.analytics.flush();
  state = "hidden";
  d.dispatchEvent(new t.w.Event("visibilitychange"));
  t.w.dispatchEvent(new t.w.Event("pagehide"));
  // what was sent went by beacon (the fetches failed): the page view to the form's submission
  assert.deepEqual(t.events().slice(0, 5).map((e) => e.event_type),
    ["page_view", "time_on_page", "cta_click", "form_start", "form_submit"]);
  assert.ok(t.events().every((e) => e.session_id === undefined && e.visitor_id === undefined));
  assert.deepEqual(touched, [], `storage touched: ${touched}`);
  // the watch sees what consent mode does
  let seen;
  const c = load({ scriptAttrs: CONSENT, before: (w) => { seen = watchStorage(w); } });
  c.flush();
  assert.ok(seen.includes("localStorage"));
});

test("default mode: a failed send is retried from memory", async () => {
  const t = load({ fetchFails: true });
  t.w.analytics.track("a");
  t.flush();
  await new Promise((r) => setImmediate(r));
  assert.equal(t.w.localStorage.length, 0);
  t.w.fetch = (endpoint, opts) => { t.sent.push({ via: "fetch", events: JSON.parse(opts.body) }); return Promise.resolve({ status: 202 }); };
  t.w.analytics.flush();
  assert.deepEqual(t.sent.at(-1).events.map((e) => e.event_type), ["page_view", "custom"]);
});

test("consent mode: ids in localStorage, the session renewed after 30 minutes without activity", () => {
  const t = load({ scriptAttrs: CONSENT, url: "https://www.example.com/?utm_source=News" });
  t.w.analytics.track("a");
  t.flush();
  const first = JSON.parse(t.w.localStorage.getItem("_an_s"));
  assert.match(first.id, UUID);
  assert.match(JSON.parse(t.w.localStorage.getItem("_an_v")), UUID);
  t.w.analytics.track("b");
  t.flush();
  assert.equal(JSON.parse(t.w.localStorage.getItem("_an_s")).id, first.id);
  t.w.localStorage.setItem("_an_s", JSON.stringify({ ...first, t: Date.now() - 31 * 60e3 }));
  t.w.analytics.track("c");
  t.flush();
  const evs = t.events();
  assert.deepEqual(evs.map((e) => e.session_id), [first.id, first.id, first.id, evs[3].session_id]);
  assert.notEqual(evs[3].session_id, first.id);
  assert.equal(new Set(evs.map((e) => e.visitor_id)).size, 1, "the visitor stays");
  assert.ok(evs.every((e) => e.utm_source === "News"), "the session's landing UTM tags");
});

test("consent mode: the next page load is the same visitor and session", () => {
  const a = load({ scriptAttrs: CONSENT });
  a.flush();
  const stored = { s: a.w.localStorage.getItem("_an_s"), v: a.w.localStorage.getItem("_an_v") };
  const b = load({ scriptAttrs: CONSENT, url: "https://www.example.com/next",
    before: (w) => { w.localStorage.setItem("_an_s", stored.s); w.localStorage.setItem("_an_v", stored.v); } });
  b.flush();
  const [x, y] = [a.events()[0], b.events()[0]];
  assert.equal(y.session_id, x.session_id);
  assert.equal(y.visitor_id, x.visitor_id);
  assert.equal(y.utm_source, "News", "the landing page's tags, kept for the session");
});

test("analytics.consent(true) gives ids to what is not sent yet; consent(false) deletes everything at once", async () => {
  const t = load();
  t.w.fetch = (endpoint, opts) => { t.sent.push({ via: "fetch", events: JSON.parse(opts.body) }); return Promise.resolve({ status: 503 }); };
  t.w.analytics.consent(true);            // before the first batch leaves: the page view gets ids
  t.flush();
  await new Promise((r) => setImmediate(r));
  const [pv] = t.events();
  assert.match(pv.session_id, UUID);
  assert.match(pv.visitor_id, UUID);
  assert.ok(t.w.localStorage.getItem("_an_s") && t.w.localStorage.getItem("_an_v"));
  assert.ok(JSON.parse(t.w.localStorage.getItem("_an_q")).length > 0, "the failed batch is kept");
  t.w.analytics.consent(false);
  assert.equal(t.w.localStorage.length, 0, "nothing stored");
  t.w.analytics.track("after");
  t.w.analytics.flush();
  await new Promise((r) => setImmediate(r));
  assert.equal(t.w.localStorage.length, 0, "and nothing stored again");
  const last = t.sent.length ? t.sent.at(-1).events : [];
  assert.ok(last.every((e) => e.session_id === undefined && e.visitor_id === undefined));
});

for (const [name, setup] of [
  ["Global Privacy Control", (w) => Object.defineProperty(w.navigator, "globalPrivacyControl", { value: true })],
  ["Do Not Track", (w) => Object.defineProperty(w.navigator, "doNotTrack", { value: "1" })],
]) {
  test(`${name} wins over consent: no id, and stored ones are deleted`, () => {
    const t = load({ scriptAttrs: CONSENT, before: (w) => {
      w.localStorage.setItem("_an_v", '"old-id"'); w.localStorage.setItem("_an_s", '{"id":"x","t":0}'); setup(w);
    } });
    t.w.analytics.consent(true);
    t.flush();
    assert.equal(t.events()[0].visitor_id, undefined);
    assert.equal(t.events()[0].session_id, undefined);
    assert.equal(t.w.localStorage.length, 0);
  });
}

test("CTA clicks, forms, exit intent and custom events", () => {
  const t = load({ html: `<a id="cta" data-analytics-cta="book_call"><span id="inner">Book</span></a>
    <form id="f1" data-analytics-form="booking"><input id="name"></form>` });
  const d = t.w.document;
  d.getElementById("inner").dispatchEvent(new t.w.MouseEvent("click", { bubbles: true }));
  const input = d.getElementById("name");
  input.dispatchEvent(new t.w.Event("input", { bubbles: true }));
  input.dispatchEvent(new t.w.Event("input", { bubbles: true }));
  d.dispatchEvent(new t.w.MouseEvent("mouseout", { clientY: 0, relatedTarget: null }));
  d.dispatchEvent(new t.w.MouseEvent("mouseout", { clientY: -5, relatedTarget: null }));
  t.w.analytics.track("video_play", { video: "intro" });
  d.getElementById("f1").dispatchEvent(new t.w.Event("submit", { bubbles: true, cancelable: true }));
  const evs = t.events();
  assert.deepEqual(types(evs), ["page_view", "cta_click", "form_start", "exit_intent", "custom", "form_submit"]);
  assert.deepEqual(evs[1].props, { cta: "book_call" });
  assert.deepEqual(evs[2].props, { form: "booking" });
  assert.deepEqual(evs[4].props, { name: "video_play", video: "intro" });
  assert.equal(t.sent.at(-1).via, "beacon", "a submit may leave the page: sendBeacon");
});

test("scroll depth milestones, once each, as the page scrolls", () => {
  const t = load();
  Object.defineProperty(t.w.document.documentElement, "scrollHeight", { value: 4000, configurable: true });
  Object.defineProperty(t.w, "innerHeight", { value: 800, configurable: true });
  const scrollTo = (y) => { Object.defineProperty(t.w, "scrollY", { value: y, configurable: true }); t.w.dispatchEvent(new t.w.Event("scroll")); };
  scrollTo(250);   // (250 + 800) / 4000 = 26 %
  scrollTo(300);
  scrollTo(3300);  // 102 %: 50, 75, 100
  scrollTo(0);
  t.flush();
  const depths = t.events().filter((e) => e.event_type === "scroll_depth").map((e) => e.props.depth);
  assert.deepEqual(depths, [25, 50, 75, 100]);
});

test("visible time on page: 30/60/180/300 s, paused while the tab is hidden", () => {
  let state = "visible";
  const t = load({ before: (w) => Object.defineProperty(w.document, "visibilityState", { get: () => state }) });
  t.tick(29);
  state = "hidden";
  t.tick(100);
  state = "visible";
  t.tick(1);   // 30 visible seconds
  t.tick(270); // 300
  t.tick(500);
  t.flush();
  const secs = t.events().filter((e) => e.event_type === "time_on_page").map((e) => e.props.seconds);
  assert.deepEqual(secs, [30, 60, 180, 300]);
});

test("SPA navigation is a new page view with fresh milestones", () => {
  const t = load();
  t.w.history.pushState({}, "", "/pricing");
  t.runTimeouts();
  t.w.history.replaceState({}, "", "/pricing");  // same path: no new page view
  t.runTimeouts();
  t.flush();
  const views = t.events().filter((e) => e.event_type === "page_view").map((e) => e.page_path);
  assert.deepEqual(views, ["/blog/post", "/pricing"]);
});

test("hiding the page sends with sendBeacon; batches of 10 go at once", () => {
  let state = "visible";
  const t = load({ before: (w) => Object.defineProperty(w.document, "visibilityState", { get: () => state }) });
  for (let i = 0; i < 9; i++) t.w.analytics.track(`e${i}`);
  assert.equal(t.sent.length, 1, "the tenth event sends the batch");
  assert.equal(t.sent[0].events.length, 10);
  t.w.analytics.track("last");
  state = "hidden";
  t.w.document.dispatchEvent(new t.w.Event("visibilitychange"));
  assert.equal(t.sent.at(-1).via, "beacon");
  assert.deepEqual(t.sent.at(-1).events.map((e) => e.props.name), ["last"]);
});

test("consent mode: failed sends are retried from a bounded queue, kept across pages", async () => {
  const t = load({ fetchFails: true, scriptAttrs: CONSENT });
  for (let i = 0; i < 150; i++) t.w.analytics.track(`e${i}`);
  t.flush();
  await new Promise((r) => setImmediate(r));
  const kept = JSON.parse(t.w.localStorage.getItem("_an_q"));
  assert.ok(kept.length > 0 && kept.length <= 100, `bounded: ${kept.length}`);
  // the next page finds them and sends them
  const next = load({ scriptAttrs: CONSENT, before: (w) => w.localStorage.setItem("_an_q", JSON.stringify(kept)) });
  next.flush();
  const names = next.events().map((e) => e.props && e.props.name).filter(Boolean);
  assert.ok(names.includes(kept.at(-1).props.name));
});

test("it never throws into the host page, even without storage or crypto.randomUUID", () => {
  const t = load({ scriptAttrs: CONSENT, before: (w) => {
    Object.defineProperty(w, "localStorage", { get() { throw new Error("denied"); } });
    Object.defineProperty(w.crypto, "randomUUID", { value: undefined });
  } });
  assert.doesNotThrow(() => t.w.analytics.track("x", { a: 1 }));
  t.flush();
  const evs = t.events();
  assert.deepEqual(types(evs), ["page_view", "custom"]);
  assert.ok(evs.every((e) => UUID.test(e.event_id) && UUID.test(e.session_id)));
});

const settle = () => new Promise((r) => setImmediate(r));
const hidePage = (t) => t.w.dispatchEvent(new t.w.PageTransitionEvent("pagehide", { persisted: true }));

test("a page restored from the back-forward cache is a new page view with fresh milestones", () => {
  const t = load();
  Object.defineProperty(t.w, "innerHeight", { value: 10000, configurable: true });   // all in view
  t.w.dispatchEvent(new t.w.Event("scroll"));
  hidePage(t);                       // the visitor goes on to another page: this one is kept whole
  t.w.dispatchEvent(new t.w.PageTransitionEvent("pageshow", { persisted: true }));   // back
  hidePage(t);
  t.w.dispatchEvent(new t.w.PageTransitionEvent("pageshow", { persisted: true }));   // back again
  t.w.dispatchEvent(new t.w.PageTransitionEvent("pageshow", { persisted: false }));  // (a load: counted already)
  t.flush();
  const evs = t.events().filter((e) => e.event_type !== "web_vitals");
  assert.deepEqual(types(evs).filter((x) => x === "page_view").length, 3);
  assert.deepEqual(evs.filter((e) => e.event_type === "scroll_depth").map((e) => e.props.depth),
    [25, 50, 75, 100, 25, 50, 75, 100, 25, 50, 75, 100], "each restore is read again");
  assert.ok(evs.every((e) => e.page_path === "/blog/post"));
});

test("a form's name is its id or name attribute, even with controls named id or name", () => {
  const t = load({ html: `<form id="signup"><input name="id"><input name="name"></form>
    <form name="newsletter"><input id="id"><input id="name"></form>
    <form><input name="id"><input name="name"></form>` });
  const forms = t.w.document.forms;
  // as browsers do (jsdom does not): form.id and form.name are the controls of that name
  for (const f of forms) {
    for (const k of ["id", "name"]) {
      const control = f.elements.namedItem(k);
      if (control) Object.defineProperty(f, k, { value: control, configurable: true });
    }
  }
  for (const f of forms) {
    f.elements[0].dispatchEvent(new t.w.Event("input", { bubbles: true }));
    f.dispatchEvent(new t.w.Event("submit", { bubbles: true, cancelable: true }));
  }
  const got = t.events().filter((e) => e.event_type.startsWith("form_")).map((e) => [e.event_type, e.props.form]);
  assert.deepEqual(got, [["form_start", "signup"], ["form_submit", "signup"],
    ["form_start", "newsletter"], ["form_submit", "newsletter"], ["form_start", "form"], ["form_submit", "form"]]);
});

test("consent withdrawn while a batch is in flight: if it fails, it is sent again without ids", async () => {
  const t = load({ scriptAttrs: CONSENT });
  let failInFlight;
  const bodies = [];
  t.w.fetch = (endpoint, opts) => {
    bodies.push(JSON.parse(opts.body));
    if (bodies.length === 1) return new Promise((_, rej) => { failInFlight = () => rej(new t.w.TypeError("Failed to fetch")); });
    return Promise.resolve({ status: 202 });
  };
  t.w.analytics.track("before");
  t.flush();
  assert.ok(bodies[0].every((e) => UUID.test(e.session_id) && UUID.test(e.visitor_id)));
  t.w.analytics.consent(false);
  failInFlight();
  await settle();
  t.w.analytics.track("after");
  t.w.analytics.flush();
  assert.deepEqual(bodies[1].map((e) => e.props && e.props.name), [undefined, "before", "after"]);
  assert.ok(bodies[1].every((e) => e.session_id === undefined && e.visitor_id === undefined), JSON.stringify(bodies[1]));
  assert.equal(t.w.localStorage.length, 0);
  // withdrawn and given again before the request fails: the new ids, never the withdrawn ones
  const u = load({ scriptAttrs: CONSENT });
  const seen = [];
  let fail;
  u.w.fetch = (endpoint, opts) => {
    seen.push(JSON.parse(opts.body));
    return seen.length === 1 ? new Promise((_, rej) => { fail = rej; }) : Promise.resolve({ status: 202 });
  };
  u.flush();
  u.w.analytics.consent(false);
  u.w.analytics.consent(true);
  fail(new u.w.TypeError("Failed to fetch"));
  await settle();
  u.w.analytics.flush();
  const [old, again] = [seen[0][0], seen[1][0]];
  assert.equal(again.event_id, old.event_id);
  assert.match(again.visitor_id, UUID);
  assert.notEqual(again.visitor_id, old.visitor_id);
  assert.notEqual(again.session_id, old.session_id);
});

test("web vitals go when the page is first hidden, not at an SPA navigation; engagement at both", () => {
  let state = "visible", observers = [];
  const t = load({ before: (w) => {
    Object.defineProperty(w.document, "visibilityState", { get: () => state });
    w.performance.getEntriesByType = (type) => type === "navigation" ? [{ responseStart: 42 }] : [];
    w.PerformanceObserver = class { constructor(fn) { this.fn = fn; } observe(o) { observers.push([o.type, this.fn]); } };
  } });
  const report = (type, entries) => observers.filter(([x]) => x === type).forEach(([, fn]) => fn({ getEntries: () => entries }));
  report("largest-contentful-paint", [{ startTime: 900 }]);
  t.tick(2);
  t.w.history.pushState({}, "", "/pricing");
  t.runTimeouts();
  report("event", [{ interactionId: 7, duration: 350 }]);   // a slow click on the new route
  t.tick(3);
  t.flush();
  assert.deepEqual(types(t.events()).filter((x) => x === "web_vitals"), [], "nothing at the route change");
  state = "hidden";
  t.w.document.dispatchEvent(new t.w.Event("visibilitychange"));
  t.w.dispatchEvent(new t.w.Event("pagehide"));
  const evs = t.events();
  const vitals = evs.filter((e) => e.event_type === "web_vitals");
  assert.equal(vitals.length, 1, "once per page load");
  assert.deepEqual(vitals[0].props, { lcp: 900, inp: 350, ttfb: 42 });
  assert.equal(vitals[0].page_path, "/blog/post", "under the path the page was loaded at");
  assert.deepEqual(evs.filter((e) => e.event_type === "engagement").map((e) => [e.page_path, e.props.seconds]),
    [["/blog/post", 2], ["/pricing", 3]]);
});

test("analytics.consent(true) sends the queue a previous page kept, once each", async () => {
  const a = load({ fetchFails: true });
  a.w.analytics.consent(true);
  a.w.analytics.track("on_page_a");
  a.flush();
  await settle();
  const kept = JSON.parse(a.w.localStorage.getItem("_an_q"));
  assert.deepEqual(kept.map((e) => e.props && e.props.name), [undefined, "on_page_a"]);
  const copy = (w) => { for (const k of ["_an_q", "_an_s", "_an_v"]) w.localStorage.setItem(k, a.w.localStorage.getItem(k)); };
  // a consent manager that says it twice, on a page that also has data-consent
  const b = load({ url: "https://www.example.com/next", scriptAttrs: CONSENT, before: copy });
  b.w.analytics.consent(true);
  b.w.analytics.consent(true);
  b.flush();
  await settle();
  const sent = b.events();
  for (const e of kept) assert.equal(sent.filter((x) => x.event_id === e.event_id).length, 1);
  const c = load({ url: "https://www.example.com/next", before: copy });
  c.w.analytics.consent(true);
  c.flush();
  await settle();
  assert.deepEqual(c.events().map((e) => e.event_id).sort(), [...kept.map((e) => e.event_id), c.events().at(-1).event_id].sort());
  assert.ok(c.events().every((e) => e.visitor_id === kept[0].visitor_id));
  assert.deepEqual(JSON.parse(c.w.localStorage.getItem("_an_q")), [], "delivered: nothing kept");
});

test("a retry queue over 64 KiB goes in bodies of at most 60 KB; an event that cannot fit is dropped", async () => {
  const t = load({ fetchFails: true });
  const big = { a: "é".repeat(500), b: "é".repeat(500), c: "é".repeat(500) };   // 3 KB in UTF-8
  for (let i = 0; i < 39; i++) t.w.analytics.track(`e${i}`, big);
  t.w.analytics.track("huge", Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`k${i}`, "x".repeat(1000)])));
  await settle();
  assert.equal(t.sent.length, 0);
  const bodies = [];
  t.w.fetch = (endpoint, opts) => { bodies.push(opts.body); return Promise.resolve({ status: 202 }); };
  t.w.analytics.flush();
  const sizes = bodies.map((b) => Buffer.byteLength(b));
  assert.ok(sizes.length >= 2 && sizes.every((n) => n <= 60000), `bodies of ${sizes} bytes`);
  const names = bodies.flatMap((b) => JSON.parse(b)).map((e) => (e.props && e.props.name) || e.event_type);
  assert.deepEqual(names.sort(), ["page_view", ...Array.from({ length: 39 }, (_, i) => `e${i}`)].sort());
});

test("text cut in half an emoji, or any lone surrogate, is removed: the edge refuses it as invalid JSON", () => {
  const t = load({ url: "https://www.example.com/?utm_campaign=" + "b".repeat(255) + "%F0%9F%98%80",
    before: (w) => Object.defineProperty(w.document, "title", { get: () => "a".repeat(511) + "\u{1F600} and more" }) });
  // (a backslash before "ud83d" is text, and stays)
  t.w.analytics.track("x\udc00y", { ok: "\u{1F600}", bad: "\ud83d!", text: "\\ud83d", both: "\\\ud83d" });
  t.flush();
  // what the edge refuses: a string that is not well-formed once the body is parsed
  const strings = (v) => typeof v === "string" ? [v] : v && typeof v === "object" ? Object.values(v).flatMap(strings) : [];
  const bad = t.sent.flatMap((s) => strings(JSON.parse(s.opts.body))).filter((x) => !x.isWellFormed());
  assert.deepEqual(bad, [], "no lone surrogate in the body");
  const [pv, custom] = t.events();
  assert.equal(pv.page_title, "a".repeat(511));
  assert.equal(pv.utm_campaign, "b".repeat(255));
  assert.deepEqual(custom.props, { name: "xy", ok: "\u{1F600}", bad: "!", text: "\\ud83d", both: "\\" });
});
