import { test } from "node:test";
import assert from "node:assert/strict";
import { load } from "./harness.mjs";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const types = (evs) => evs.map((e) => e.event_type);

test("a page view with the contract's fields, UTM tags and ids", () => {
  const t = load({ htmlAttrs: 'data-analytics-experiment="cta_copy" data-analytics-variant="b"' });
  t.flush();
  const [pv] = t.events();
  assert.equal(pv.event_type, "page_view");
  assert.match(pv.event_id, UUID);
  assert.match(pv.session_id, UUID);
  assert.match(pv.visitor_id, UUID);
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
});

test("the session is kept in localStorage and renewed after 30 minutes without activity", () => {
  const t = load();
  t.w.analytics.track("a");
  const first = JSON.parse(t.w.localStorage.getItem("_an_s"));
  t.w.analytics.track("b");
  assert.equal(JSON.parse(t.w.localStorage.getItem("_an_s")).id, first.id);
  t.w.localStorage.setItem("_an_s", JSON.stringify({ ...first, t: Date.now() - 31 * 60e3 }));
  t.w.analytics.track("c");
  t.flush();
  const ids = t.events().map((e) => e.session_id);
  assert.equal(ids[0], first.id);
  assert.equal(ids[2], first.id);
  assert.notEqual(ids[3], first.id);
  assert.equal(new Set(t.events().map((e) => e.visitor_id)).size, 1, "the visitor stays");
});

for (const [name, setup] of [
  ["Global Privacy Control", (w) => Object.defineProperty(w.navigator, "globalPrivacyControl", { value: true })],
  ["Do Not Track", (w) => Object.defineProperty(w.navigator, "doNotTrack", { value: "1" })],
]) {
  test(`${name}: no visitor id, and a stored one is forgotten`, () => {
    const t = load({ before: (w) => { w.localStorage.setItem("_an_v", '"old-id"'); setup(w); } });
    t.flush();
    assert.equal(t.events()[0].visitor_id, undefined);
    assert.equal(t.w.localStorage.getItem("_an_v"), null);
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

test("failed sends are retried from a bounded queue, kept across pages", async () => {
  const t = load({ fetchFails: true });
  for (let i = 0; i < 150; i++) t.w.analytics.track(`e${i}`);
  t.flush();
  await new Promise((r) => setImmediate(r));
  const kept = JSON.parse(t.w.localStorage.getItem("_an_q"));
  assert.ok(kept.length > 0 && kept.length <= 100, `bounded: ${kept.length}`);
  // the next page finds them and sends them
  const next = load({ before: (w) => w.localStorage.setItem("_an_q", JSON.stringify(kept)) });
  next.flush();
  const names = next.events().map((e) => e.props && e.props.name).filter(Boolean);
  assert.ok(names.includes(kept.at(-1).props.name));
});

test("it never throws into the host page, even without storage or crypto.randomUUID", () => {
  const t = load({ before: (w) => {
    Object.defineProperty(w, "localStorage", { get() { throw new Error("denied"); } });
    Object.defineProperty(w.crypto, "randomUUID", { value: undefined });
  } });
  assert.doesNotThrow(() => t.w.analytics.track("x", { a: 1 }));
  t.flush();
  const evs = t.events();
  assert.deepEqual(types(evs), ["page_view", "custom"]);
  assert.ok(evs.every((e) => UUID.test(e.event_id) && UUID.test(e.session_id)));
});
