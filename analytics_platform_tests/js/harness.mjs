// Loads analytics.js into a jsdom window with controllable timers, fetch and sendBeacon.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

export const SOURCE = readFileSync(new URL("../../analytics_platform/tracker/analytics.js", import.meta.url), "utf8");

export function load({ url = "https://www.example.com/blog/post?utm_source=News&utm_medium=email",
                      html = "", htmlAttrs = "", before = () => {}, fetchFails = false,
                      scriptAttrs = {} } = {}) {
  const sent = [];       // every body sent: {via, events}
  const timers = [];     // setTimeout / setInterval callbacks, run by hand
  const dom = new JSDOM(
    `<!doctype html><html ${htmlAttrs}><head><title>Post</title></head><body>${html}</body></html>`,
    {
      url, referrer: "https://www.google.com/", runScripts: "outside-only", pretendToBeVisual: false,
      beforeParse(w) {
        w.setTimeout = (fn) => { timers.push({ fn, once: true }); return timers.length; };
        w.clearTimeout = (id) => { if (timers[id - 1]) timers[id - 1].fn = null; };
        w.setInterval = (fn) => { timers.push({ fn, once: false, interval: true }); return timers.length; };
        w.fetch = (endpoint, opts) => {
          if (fetchFails) return Promise.reject(new Error("offline"));
          sent.push({ via: "fetch", endpoint, opts, events: JSON.parse(opts.body) });
          return Promise.resolve({ status: 202 });
        };
        w.navigator.sendBeacon = (endpoint, body) => { sent.push({ via: "beacon", endpoint, events: JSON.parse(body) }); return true; };
        before(w);
      },
    });
  const w = dom.window;
  // jsdom has no layout: give the page a height, or it counts as seen to 100 % at once
  Object.defineProperty(w.document.documentElement, "scrollHeight", { value: 10000, configurable: true });
  const script = w.document.createElement("script");
  script.setAttribute("data-endpoint", "https://collector.example.com/v1/events");
  for (const [k, v] of Object.entries(scriptAttrs)) script.setAttribute(k, v);
  Object.defineProperty(w.document, "currentScript", { value: script, configurable: true });
  w.eval(SOURCE);
  Object.defineProperty(w.document, "currentScript", { value: null, configurable: true });
  const tick = (n = 1) => {          // n seconds of the 1 s interval
    for (let i = 0; i < n; i++) timers.filter((t) => t.interval).forEach((t) => t.fn && t.fn());
  };
  const runTimeouts = () => {
    timers.filter((t) => t.once && t.fn).forEach((t) => { const f = t.fn; t.fn = null; f(); });
  };
  const flush = () => { runTimeouts(); w.analytics.flush(); };
  const events = () => sent.flatMap((s) => s.events);
  return { dom, w, sent, events, tick, flush, runTimeouts };
}
