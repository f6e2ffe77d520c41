/*! analytics.js: nothing stored without consent */
/*
 * <script src="https://collector.example.com/analytics.js"
 *         data-endpoint="https://collector.example.com/v1/events" defer></script>
 *
 * Page views (also SPA navigation, and a page shown again from the back-forward cache) with the browser's time zone (the server keeps only its
 * country), CTA clicks ([data-analytics-cta]), scroll depth (25/50/75/100), visible time on page
 * (30/60/180/300 s), form start/submit, exit intent, A/B variant
 * (<html data-analytics-experiment="x" data-analytics-variant="y">), custom events:
 * window.analytics.track("name", {key: "value"}). Issue 19: clicks on links to another host
 * (outbound: the host only), downloads (links to a file whose extension is in data-downloads,
 * comma-separated; default below), 404 pages (<meta name="analytics:404"> on the page: with the
 * referring path of the same site), engaged time (visible seconds, sent each time the page is
 * hidden) and web vitals (LCP, INP, CLS, TTFB: once per page load, when it is first hidden).
 *
 * By default it reads and writes nothing on the device (no cookie, no localStorage,
 * sessionStorage or IndexedDB) and sends no id: the server makes a daily visitor hash and the
 * pipeline the sessions. With consent (data-consent="granted" on this tag, or
 * analytics.consent(true) on each page) a random visitor id and a session id (new after 30
 * minutes without activity) are kept in localStorage; analytics.consent(false) deletes them at
 * once. Do-Not-Track and Global Privacy Control win over consent.
 */
(function (w, d) {
  try {
    var script = d.currentScript || {getAttribute: function () { return null; }};
    var endpoint = script.getAttribute("data-endpoint") || "/v1/events";
    var nav = w.navigator, loc = w.location;
    var PREFIX = "_an_", TIMEOUT = 18e5, MAX_QUEUE = 100, BATCH = 10;
    var queue = [], retry = [], timer = 0, mem = {}, consented = false;
    var optedOut = nav.doNotTrack == "1" || w.doNotTrack == "1" || nav.globalPrivacyControl === true;
    var exts = (script.getAttribute("data-downloads") ||
      "pdf,zip,dmg,exe,csv,txt,docx,xlsx,pptx,mp3,mp4").split(",");
    var vit = {}, vsent, first = loc.pathname;

    var uuid = function () {
      if (crypto.randomUUID) return crypto.randomUUID();
      // (http pages have no randomUUID) each 0, 1 or 8 becomes a random hex digit: 4 stays the
      // version, 8 becomes 8-b (the variant)
      return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, function (c) {
        return (c ^ crypto.getRandomValues(new Uint8Array(1))[0] & 15 >> c / 4).toString(16);
      });
    };
    // Storage is touched only with consent (and to delete, when it is withdrawn); where it is
    // disabled, the ids live as long as the page (mem).
    var store = function (k, v) {
      try {
        if (v === undefined) return JSON.parse(localStorage.getItem(PREFIX + k)) || mem[k];
        localStorage.setItem(PREFIX + k, JSON.stringify(v));
      } catch (e) { /* storage off */ }
      return v === undefined ? mem[k] : (mem[k] = v);
    };
    // without consent: this page load's UTM tags
    var landing = {}, q = new URLSearchParams(loc.search);
    ["source", "medium", "campaign", "content", "term"].forEach(function (k) {
      if (q.get(k = "utm_" + k)) landing[k] = q.get(k).slice(0, 256);
    });

    // The ids of events not sent yet are checked as they leave (send), not here: a batch in
    // flight when consent is withdrawn may fail and come back with them.
    var consent = function (yes) {
      var was = consented;
      consented = !!yes && !optedOut;
      // consent(true) from a consent manager, as data-consent: what earlier pages could not
      // deliver goes with the next send. Only when consent begins: until it is withdrawn (which
      // deletes the stored queue) what is stored is also in retry or in flight.
      if (consented) return was || (retry = retry.concat(store("q") || []));
      mem = {};
      try { ["s", "v", "q"].forEach(function (k) { localStorage.removeItem(PREFIX + k); }); } catch (e) { /* storage off */ }
    };

    var send = function (beacon) {
      clearTimeout(timer); timer = 0;
      var batch = retry.concat(queue).slice(-MAX_QUEUE), sent = new Date().toISOString(), s, v;
      queue = []; retry = [];
      if (!batch.length) return;
      if (consented) {
        // The session: renewed after 30 minutes without activity; UTM tags of its landing page kept.
        s = store("s");
        if (!s || Date.now() - s.t > TIMEOUT) s = {id: uuid(), utm: landing};
        s.t = Date.now();
        store("s", s);
        v = store("v") || store("v", uuid());
      }
      batch.forEach(function (e) {
        e.sent_ts = sent;
        // ids only with consent, and only the current visitor's: an event that has none gets
        // them, one sent before consent was withdrawn (its request failed afterwards) loses them
        if (e.visitor_id != v) { e.session_id = s && s.id; e.visitor_id = v; for (var k in s && s.utm) e[k] = s.utm[k]; }
      });
      var save = function () { if (consented) store("q", retry); };
      // Bodies of at most 50 events (the edge's limit) and 60 KB: the edge, keepalive fetch and
      // sendBeacon all refuse more than 64 KiB. An event over 60 KB on its own is dropped.
      (function post(rest) {
        // A lone surrogate (half an emoji cut by a slice, or in what a page passes to track) is
        // not JSON the edge takes: it would refuse the whole body. JSON.stringify writes it as
        // \udXXX (a pair goes as the character itself); removed, escaped backslashes skipped.
        // (Older engines write it raw, and fetch and sendBeacon send it as U+FFFD.)
        for (var part = rest.slice(0, 50), body; new Blob([body = JSON.stringify(part).replace(/(\\\\)|\\ud[89a-f]../g, "$1")]).size > 6e4;) part.pop();
        var keep = function () { retry = part.concat(retry).slice(-MAX_QUEUE); save(); };
        if (part[0] && !(beacon && nav.sendBeacon && nav.sendBeacon(endpoint, body))) {
          try {
            // a string body goes as text/plain (CONTRACT §1): a simple request, no CORS preflight
            fetch(endpoint, {method: "POST", body: body, keepalive: true, credentials: "omit"})
              .then(function (r) { if (r.status >= 500 || r.status == 429) keep(); else save(); }, keep);
          } catch (e) { keep(); }
        }
        if ((rest = rest.slice(part.length || 1))[0]) post(rest);
      })(batch);
    };

    var page = {};
    var track = function (type, props, path) {
      try {
        var e = {
          event_type: type, event_id: uuid(),
          page_path: path || loc.pathname, page_host: loc.hostname, page_title: d.title.slice(0, 512),
          referrer: d.referrer || undefined, screen_width: screen.width, screen_height: screen.height,
          event_ts: new Date().toISOString()
        }, p = {}, k, root = d.documentElement;
        if (!consented) for (k in landing) e[k] = landing[k];
        if (type == "page_view") e.time_zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
        var exp = root.getAttribute("data-analytics-experiment"), variant = root.getAttribute("data-analytics-variant");
        if (exp && variant && (type == "page_view" || type == "cta_click")) { p.experiment = exp; p.variant = variant; }
        for (k in props) p[k] = props[k];
        for (k in p) { e.props = p; break; }
        queue.push(e);
        if (queue.length >= BATCH) send(); else if (!timer) timer = setTimeout(send, 5e3);
      } catch (err) { /* never break the host page */ }
    };

    // Per page: milestones reached, visible seconds, forms started, exit intent shown.
    var pageView = function () {
      var from = page.path;
      if (from === loc.pathname) return;
      if (from) leave();
      page = {path: loc.pathname, depth: 0, seen: 0, eng: 0, forms: []};
      track("page_view");
      // the page that linked here: an SPA's previous one (on a page load the handler reads it
      // from the referrer, CONTRACT §2)
      if (d.querySelector('meta[name="analytics:404"]')) track("not_found", from && {from: from});
      onScroll();
    };
    // Leaving a page (hidden, or an SPA navigation): its visible seconds since the last report.
    // When hidden (it may never show again), once per page load, the web vitals measured so far,
    // under the path it was loaded at (in an SPA, interactions on every route count toward INP).
    var leave = function (hidden) {
      if (page.seen > page.eng) { track("engagement", {seconds: page.seen - page.eng}, page.path); page.eng = page.seen; }
      if (!hidden || vsent) return;
      vsent = 1;
      try { vit.ttfb = performance.getEntriesByType("navigation")[0].responseStart; } catch (e) { /* none */ }
      for (var k in vit) { track("web_vitals", vit, first); break; }
    };
    var observe = function (type, fn) {
      try { new PerformanceObserver(function (l) { l.getEntries().forEach(fn); }).observe({type: type, buffered: true, durationThreshold: 16}); } catch (e) { /* unsupported */ }
    };
    var cls = 0, last = 0, start = 0;
    observe("largest-contentful-paint", function (e) { vit.lcp = e.startTime; });
    // INP: the slowest interaction (web.dev's p98 is the slowest under 50 interactions)
    observe("event", function (e) { if (e.interactionId && !(vit.inp >= e.duration)) vit.inp = e.duration; });
    // CLS: the largest session window of shifts (gaps under 1 s, at most 5 s), as web.dev
    observe("layout-shift", function (e) {
      var t = e.startTime;
      if (e.hadRecentInput) return;
      cls = t - last < 1e3 && t - start < 5e3 ? cls + e.value : (start = t, e.value);
      last = t;
      if (!(vit.cls >= cls)) vit.cls = cls;
    });
    // Depth is the share of the page that has been in view: a page that fits in the window is
    // seen to 100 % as soon as it shows.
    var onScroll = function () {
      var el = d.documentElement, h = Math.max(el.scrollHeight, d.body ? d.body.scrollHeight : 0);
      var pct = h ? (w.scrollY + w.innerHeight) / h * 100 : 100;
      [25, 50, 75, 100].forEach(function (m) {
        if (pct >= m - 0.5 && page.depth < m) { page.depth = m; track("scroll_depth", {depth: m}); }
      });
    };
    // the attributes: f.id and f.name are the form's controls of that name, if it has any
    var formName = function (f) { return f.getAttribute("data-analytics-form") || f.getAttribute("id") || f.getAttribute("name") || "form"; };

    setInterval(function () {
      if (d.visibilityState == "hidden") return;
      page.seen++;
      if ([30, 60, 180, 300].indexOf(page.seen) > -1) track("time_on_page", {seconds: page.seen});
    }, 1e3);
    w.addEventListener("scroll", function () { try { onScroll(); } catch (e) { /* ignore */ } }, {passive: true});
    d.addEventListener("click", function (ev) {
      try {
        var t = ev.target, c = t.closest("[data-analytics-cta]"), u, x;
        if (c) track("cta_click", {cta: c.getAttribute("data-analytics-cta")});
        // a link: a download (by extension), else another host's (mailto:, tel: have none)
        u = new URL(t.closest("a[href]").href);
        x = (u.pathname.toLowerCase().match(/\.(\w+)$/) || [])[1];
        if (exts.indexOf(x) > -1) track("download", {ext: x, file: u.pathname});
        else if (u.hostname && u.hostname != loc.hostname) track("outbound", {host: u.hostname});
      } catch (e) { /* not a link */ }
    }, true);
    d.addEventListener("input", function (ev) {
      var f = ev.target && ev.target.form;
      if (f && page.forms.indexOf(f) < 0) { page.forms.push(f); track("form_start", {form: formName(f)}); }
    }, true);
    d.addEventListener("submit", function (ev) { track("form_submit", {form: formName(ev.target)}); send(true); }, true);
    d.addEventListener("mouseout", function (ev) {
      if (!ev.relatedTarget && ev.clientY <= 0 && !page.exit) { page.exit = 1; track("exit_intent"); }
    });
    var hide = function () { leave(1); send(true); };
    d.addEventListener("visibilitychange", function () { if (d.visibilityState == "hidden") hide(); });
    w.addEventListener("pagehide", hide);
    ["pushState", "replaceState"].forEach(function (m) {
      var orig = history[m];
      // after the app has rendered the new page (title, height)
      history[m] = function () { var r = orig.apply(this, arguments); setTimeout(pageView); return r; };
    });
    w.addEventListener("popstate", function () { setTimeout(pageView); });
    // back or forward to a page kept in the back-forward cache: shown again without a load
    w.addEventListener("pageshow", function (e) { if (e.persisted) { page = {}; pageView(); } });

    if (script.getAttribute("data-consent") == "granted") consent(true);
    w.analytics = {
      track: function (name, props) { var p = {name: String(name)}, k; for (k in props) p[k] = props[k]; track("custom", p); },
      flush: send,
      consent: consent  // (it cannot throw: storage is only tried)
    };
    pageView();
  } catch (err) { /* never break the host page */ }
})(window, document);
