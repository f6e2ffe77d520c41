"""Generate seeded, realistic traffic as columnar arrays (numpy), never one Python object per event.

The result, :class:`Traffic`, holds three tables of *intended truth*:

- ``sessions``: one row per simulated session (human and bot) with what the simulator decided:
  visitor, source, variant, whether it converts, its page count;
- ``events``: one row per event as it happened (true time), before any delivery effect;
- ``deliveries``: one row per copy that reaches the collector (duplicates and late retries
  included), with the device-clock ``event_ts`` / ``sent_ts`` and the server ``ingest_ts``.

Times are integer microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

from analytics_platform.contract import EVENT_TYPES, SCROLL_DEPTHS, TIME_MILESTONES
from analytics_platform.simulate import model as m

US = 1_000_000
ET = {name: i for i, name in enumerate(EVENT_TYPES)}


@dataclass(frozen=True)
class SimConfig:
    """Knobs of the simulation; the defaults give a plausible small business site."""

    days: int = 14
    visitors_per_day: int = 2000
    start: date = field(default_factory=lambda: (datetime.now(UTC) - timedelta(days=14)).date())
    seed: int = 42
    returning_share_max: float = 0.35
    extra_sessions_per_visit_day: float = 0.12
    # Visitors whose browser runs the tracker in consent mode (visitor_id and session_id kept in
    # localStorage); the others send no id, and the handler gives their events a visitor_hash
    # of the day (docs/PRIVACY.md). Bots draw their own.
    consent_share: float = 0.3
    bot_session_share: float = 0.03
    conversion_control: float = 0.045
    conversion_treatment: float = 0.065
    form_start_rate: float = 0.6
    form_submit_rate: float = 0.7
    missing_sent_ts_share: float = 0.05
    late_share: float = 0.008  # delivered 1–3 h late (retry queue)
    very_late_share: float = 0.0003  # delivered 24–40 h late, past the default late window
    duplicate_share: float = 0.006
    # All traffic in one hour instead of spread over the day (for throughput benchmarks).
    one_hour: bool = False
    # Nothing arrives after this instant (UTC): the lake never holds deliveries from the future.
    until: datetime | None = None


@dataclass
class Traffic:
    config: SimConfig
    sessions: dict[str, np.ndarray]
    events: dict[str, np.ndarray]
    deliveries: dict[str, np.ndarray]
    # web_vitals events' values: ``events["prop"]`` of such an event is a row of this (lcp, inp,
    # cls, ttfb; NaN where the browser measures none)
    vitals: np.ndarray = field(default_factory=lambda: np.empty((0, 4)))

    @property
    def n_deliveries(self) -> int:
        return len(self.deliveries["event_idx"])


def _weights(d: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    idx = np.array([m.PAGE_INDEX[p] for p in d], dtype=np.int16)
    w = np.array(list(d.values()), dtype=float)
    return idx, w / w.sum()


def _group_index(counts: np.ndarray) -> np.ndarray:
    """0..n-1 within each group of a repeat by ``counts``."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


def _visitors(cfg: SimConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """(visitor index, day index) of every visitor-day, and the number of visitors."""
    v = cfg.visitors_per_day
    n_total = 0
    loyalty = np.empty(0)
    last_seen = np.empty(0)
    out_v, out_d = [], []
    for d in range(cfg.days):
        n_ret = round(v * min(cfg.returning_share_max, 0.04 * d)) if n_total else 0
        n_ret = min(n_ret, n_total)
        if n_ret:
            # Loyal, recent visitors come back more often; Gumbel top-k draws without
            # replacement in O(n).
            w = loyalty[:n_total] * np.exp(-(d - last_seen[:n_total]) / 10.0)
            keys = np.log(w) + rng.gumbel(size=n_total)
            ret = np.argpartition(-keys, n_ret - 1)[:n_ret]
        else:
            ret = np.empty(0, dtype=np.int64)
        new = np.arange(n_total, n_total + v - n_ret)
        n_total += len(new)
        loyalty = np.concatenate([loyalty, rng.lognormal(0.0, 1.0, len(new))])
        last_seen = np.concatenate([last_seen, np.full(len(new), d, dtype=float)])
        today = np.concatenate([ret, new]).astype(np.int64)
        last_seen[today] = d
        out_v.append(today)
        out_d.append(np.full(len(today), d, dtype=np.int32))
    return np.concatenate(out_v), np.concatenate(out_d), n_total


def generate(cfg: SimConfig) -> Traffic:
    """Simulate ``cfg.days`` days of traffic. Same config (and seed) → same arrays.

    Each step draws from the one generator in a fixed order (the order of the calls below, and
    of the draws inside each), which is what keeps a seed's output identical byte for byte.
    """
    rng = np.random.default_rng(cfg.seed)
    # issue 19's draws (time zones, broken links, outbound clicks, downloads, vitals) come from
    # a generator of their own, so the traffic drawn before them is what it was
    rng19 = np.random.default_rng(cfg.seed + 19)
    day0 = int(datetime(cfg.start.year, cfg.start.month, cfg.start.day, tzinfo=UTC).timestamp())
    visitors = _visitor_traits(cfg, rng)
    humans = _human_sessions(cfg, rng, visitors, day0)
    sess = _with_bot_sessions(cfg, rng, visitors, humans)
    _assign_user_agents_and_screens(rng, sess, visitors, humans["visitor_idx"])
    _assign_device_clocks(cfg, rng, sess)
    sess["tz_idx"] = _time_zones(rng19, visitors.n, sess)
    pv = _page_views(rng, sess)
    _broken_links(rng19, sess, pv)
    ev = _events(cfg, rng, sess, pv)
    ev, vitals = _issue19_events(rng19, sess, pv, ev)
    deliveries = _deliveries(cfg, rng, sess, ev)
    return Traffic(cfg, sess, ev, deliveries, vitals)


def _time_zones(rng: np.random.Generator, n_visitors: int,
                sess: dict[str, np.ndarray]) -> np.ndarray:
    """Each session's browser time zone (an index of ``m.TIME_ZONES``): the visitor's; a bot
    draws one like anyone."""
    w = np.array(list(m.TIME_ZONES.values()))
    zone = rng.choice(len(w), n_visitors + int(sess["is_bot"].sum()), p=w / w.sum())
    return zone[np.minimum(sess["visitor_idx"], len(zone) - 1)].astype(np.int16)


def _broken_links(rng: np.random.Generator, sess: dict[str, np.ndarray],
                  pv: _PageViews) -> None:
    """Some human page views are of a missing page (the site's 404): a later page that followed
    a broken link on the site, or a landing from another site's broken link. Converting visits
    keep their path to the booking page."""
    human = ~pv.is_bot & ~pv.converting
    later = human & (pv.pos > 0) & (rng.random(len(pv.sess)) < m.BROKEN_LINK_SHARE)
    landing = human & (pv.pos == 0) & (rng.random(len(pv.sess)) < m.BROKEN_LANDING_SHARE)
    broken = np.flatnonzero(later | landing)
    pv.page[broken] = rng.choice(m.MISSING_PAGES, len(broken))
    pv.kind[broken] = "missing"
    pv.depth_level[broken] = 0


def _issue19_events(rng: np.random.Generator, sess: dict[str, np.ndarray], pv: _PageViews,
                    ev: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The events of issue 19 on human page views, merged into ``ev`` in its order: the 404
    mark (``not_found``, props.from = the previous page of the site), outbound clicks,
    downloads, engaged time and web vitals, both sent when the page is hidden (its end)."""
    human = np.flatnonzero(~pv.is_bot)
    start, dwell = pv.start_us, pv.dwell_us
    kinds = pv.kind[human]
    prev = np.where(pv.pos > 0, np.roll(pv.page, 1) + 1, 0)
    parts = []

    def add(rows: np.ndarray, etype: str, t: np.ndarray, prop: np.ndarray | int = 0) -> None:
        parts.append({"pv": rows.astype(np.int64),
                      "type": np.full(len(rows), ET[etype], dtype=np.int8),
                      "t_us": t.astype(np.int64),
                      "prop": np.broadcast_to(np.asarray(prop, dtype=np.int32),
                                              len(rows)).copy()})

    missing = human[kinds == "missing"]
    add(missing, "not_found", start[missing] + 1000, prev[missing])
    for etype, rate, choices, weights, at in (
            ("outbound", m.OUTBOUND_RATE, m.OUTBOUND_HOSTS, m.OUTBOUND_WEIGHTS, 95),
            ("download", m.DOWNLOAD_RATE, m.DOWNLOADS, m.DOWNLOAD_WEIGHTS, 60)):
        p = np.array([rate[k] for k in kinds])
        rows = human[rng.random(len(human)) < p]
        w = np.array(weights, dtype=float)
        add(rows, etype, start[rows] + dwell[rows] * at // 100,
            rng.choice(len(choices), len(rows), p=w / w.sum()))
    end = start[human] + dwell[human]
    add(human, "engagement", end, np.round(pv.dwell_s[human]).astype(np.int32))
    # web vitals: log-normal around the device's medians, worse on heavy pages; Safari (the
    # model's user agents that say "Version/") measures TTFB only
    device = sess["device"][pv.sess[human]]
    slow = np.isin(pv.page[human], [m.PAGE_INDEX[p] for p in m.SLOW_PAGES])
    vitals = np.empty((len(human), 4))
    for j, name in enumerate(("lcp", "inp", "cls", "ttfb")):
        median = np.array(m.VITALS_MEDIANS[name])[device]
        if name in ("lcp", "cls"):
            median = np.where(slow, median * m.SLOW_FACTOR, median)
        vitals[:, j] = median * rng.lognormal(0.0, m.VITALS_SIGMA[name], len(human))
    vitals[:, 0] = np.round(vitals[:, 0])
    vitals[:, 1] = np.round(vitals[:, 1] / 8) * 8  # INP: browsers report in 8 ms steps
    vitals[:, 2] = np.round(vitals[:, 2], 3)
    vitals[:, 3] = np.round(vitals[:, 3], 1)
    uas = [ua for d in m.DEVICES for ua in m.USER_AGENTS[d]]
    safari = np.array(["Version/" in ua for ua in uas + [""] * len(m.BOT_USER_AGENTS)])
    vitals[safari[sess["ua_idx"][pv.sess[human]]], :3] = np.nan
    add(human, "web_vitals", end, np.arange(len(human), dtype=np.int32))

    new = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    new["session_idx"] = pv.sess[new["pv"]]
    new["page_idx"] = pv.page[new["pv"]]
    pv_prev_page = np.where(pv.pos > 0, np.roll(pv.page, 1), -1)
    new["prev_page_idx"] = pv_prev_page[new["pv"]].astype(np.int16)
    merged = {key: np.concatenate([ev[key], new[key]]) for key in ev}
    order = np.lexsort((merged["type"], merged["t_us"], merged["session_idx"]))
    return {key: v[order] for key, v in merged.items()}, vitals


@dataclass(frozen=True)
class _Visitors:
    """Every visitor's fixed traits, and which days they visit."""

    n: int
    vis_of_vd: np.ndarray  # visitor of each visitor-day
    day_of_vd: np.ndarray  # day index of each visitor-day
    first_day: np.ndarray
    device: np.ndarray
    ua_choice: np.ndarray
    screen_choice: np.ndarray
    consent: np.ndarray
    variant: np.ndarray


def _visitor_traits(cfg: SimConfig, rng: np.random.Generator) -> _Visitors:
    vis_of_vd, day_of_vd, n_visitors = _visitors(cfg, rng)
    first_day = np.full(n_visitors, cfg.days, dtype=np.int32)
    np.minimum.at(first_day, vis_of_vd, day_of_vd)
    return _Visitors(
        n=n_visitors, vis_of_vd=vis_of_vd, day_of_vd=day_of_vd, first_day=first_day,
        device=rng.choice(len(m.DEVICES), n_visitors, p=m.DEVICE_WEIGHTS).astype(np.int8),
        ua_choice=rng.random(n_visitors),
        screen_choice=rng.random(n_visitors),
        consent=rng.random(n_visitors) < cfg.consent_share,
        variant=(rng.random(n_visitors) < 0.5).astype(np.int8),
    )


def _human_sessions(cfg: SimConfig, rng: np.random.Generator, visitors: _Visitors,
                    day0: int) -> dict[str, np.ndarray]:
    """One to three sessions per visitor-day: start, source, device, variant, conversion."""
    vis_of_vd, day_of_vd = visitors.vis_of_vd, visitors.day_of_vd
    per_vd = 1 + np.minimum(rng.poisson(cfg.extra_sessions_per_visit_day, len(vis_of_vd)), 2)
    s_vis = np.repeat(vis_of_vd, per_vd)
    s_day = np.repeat(day_of_vd, per_vd)
    n_h = len(s_vis)
    hour_p = np.array(m.HOUR_WEIGHTS) / sum(m.HOUR_WEIGHTS)
    if cfg.one_hour:
        s_start = np.full(n_h, day0 + 12 * 3600, dtype=np.int64) * US
        s_start += (rng.random(n_h) * 3000 * US).astype(np.int64)
    else:
        hours = rng.choice(24, n_h, p=hour_p)
        s_start = (day0 + s_day.astype(np.int64) * 86400 + hours * 3600) * US
        s_start += (rng.random(n_h) * 3600 * US).astype(np.int64)
    is_new_visit = s_day == visitors.first_day[s_vis]
    w_new = np.array([s.weight_new for s in m.SOURCES])
    w_ret = np.array([s.weight_returning for s in m.SOURCES])
    src_new = rng.choice(len(m.SOURCES), n_h, p=w_new / w_new.sum())
    src_ret = rng.choice(len(m.SOURCES), n_h, p=w_ret / w_ret.sum())
    s_source = np.where(is_new_visit, src_new, src_ret).astype(np.int16)
    s_device = visitors.device[s_vis]
    s_variant = visitors.variant[s_vis]

    conv_mult = np.array([s.conversion_multiplier for s in m.SOURCES])[s_source]
    conv_mult *= np.array(m.DEVICE_CONVERSION)[s_device]
    conv_mult *= np.where(is_new_visit, 1.0, 1.3)
    base = np.where(s_variant == 1, cfg.conversion_treatment, cfg.conversion_control)
    s_converts = rng.random(n_h) < base * conv_mult
    return {"visitor_idx": s_vis, "start_us": s_start, "source_idx": s_source,
            "device": s_device, "variant": s_variant, "converts": s_converts}


def _with_bot_sessions(cfg: SimConfig, rng: np.random.Generator, visitors: _Visitors,
                       humans: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The sessions table: the human sessions, then bots (a visitor each) started near them."""
    s_vis, s_start = humans["visitor_idx"], humans["start_us"]
    n_h = len(s_vis)
    n_b = round(n_h * cfg.bot_session_share)
    b_vis = np.arange(visitors.n, visitors.n + n_b)
    b_start = s_start[rng.integers(0, n_h, n_b)] if n_h else np.empty(0, dtype=np.int64)
    b_start = b_start + (rng.random(n_b) * 600 * US).astype(np.int64)
    return {
        "visitor_idx": np.concatenate([s_vis, b_vis]).astype(np.int64),
        "start_us": np.concatenate([s_start, b_start]).astype(np.int64),
        "is_bot": np.concatenate([np.zeros(n_h, bool), np.ones(n_b, bool)]),
        "source_idx": np.concatenate([humans["source_idx"], np.zeros(n_b, np.int16)]),
        "device": np.concatenate([humans["device"], np.zeros(n_b, np.int8)]),
        "variant": np.concatenate([humans["variant"], np.zeros(n_b, np.int8)]),
        "converts": np.concatenate([humans["converts"], np.zeros(n_b, bool)]),
        "consent": np.concatenate([visitors.consent[s_vis], rng.random(n_b) < 0.5]),
    }


def _assign_user_agents_and_screens(rng: np.random.Generator, sess: dict[str, np.ndarray],
                                    visitors: _Visitors, s_vis: np.ndarray) -> None:
    """``ua_idx`` and ``screen_idx``: an index into the flat tables the writer uses (a human
    keeps the visitor's; a bot draws its own)."""
    n_b = int(sess["is_bot"].sum())
    ua_choice = np.concatenate([visitors.ua_choice[s_vis], rng.random(n_b)])
    screen_choice = np.concatenate([visitors.screen_choice[s_vis], rng.random(n_b)])
    ua_offsets = np.cumsum([0] + [len(m.USER_AGENTS[d]) for d in m.DEVICES])
    ua_counts = np.array([len(m.USER_AGENTS[d]) for d in m.DEVICES])
    sc_offsets = np.cumsum([0] + [len(m.SCREENS[d]) for d in m.DEVICES])
    sc_counts = np.array([len(m.SCREENS[d]) for d in m.DEVICES])
    dev = sess["device"]
    ua_idx = ua_offsets[dev] + (ua_choice * ua_counts[dev]).astype(int)
    bot_ua = ua_offsets[-1] + (ua_choice * len(m.BOT_USER_AGENTS)).astype(int)
    sess["ua_idx"] = np.where(sess["is_bot"], bot_ua, ua_idx).astype(np.int16)
    sess["screen_idx"] = (sc_offsets[dev] + (screen_choice * sc_counts[dev]).astype(int)).astype(
        np.int16
    )


def _assign_device_clocks(cfg: SimConfig, rng: np.random.Generator,
                          sess: dict[str, np.ndarray]) -> None:
    """``skew_us`` and ``has_sent_ts``: most device clocks are right, some minutes off, a few a
    whole time zone off; some trackers send no ``sent_ts``."""
    n_s = len(sess["visitor_idx"])
    r = rng.random(n_s)
    skew_s = np.where(r < 0.85, rng.normal(0, 1, n_s), rng.normal(0, 120, n_s))
    skew_s = np.where(r > 0.97, rng.choice([-1, 1], n_s) * rng.integers(1, 12, n_s) * 3600, skew_s)
    sess["skew_us"] = (skew_s * US).astype(np.int64)
    sess["has_sent_ts"] = rng.random(n_s) >= cfg.missing_sent_ts_share


@dataclass(frozen=True)
class _PageViews:
    """One row per page view, in session order."""

    sess: np.ndarray  # session index
    pos: np.ndarray  # 0-based position in its session
    page: np.ndarray  # page index
    last: np.ndarray  # the session's last page view
    converting: np.ndarray  # of a converting session
    cta: np.ndarray  # where the CTA is clicked
    kind: np.ndarray  # the page's kind
    depth_level: np.ndarray  # scroll milestones reached (0–4)
    dwell_s: np.ndarray
    dwell_us: np.ndarray
    start_us: np.ndarray
    is_bot: np.ndarray


def _page_views(rng: np.random.Generator, sess: dict[str, np.ndarray]) -> _PageViews:
    """How many pages each session sees (sets ``sess["n_pages"]``), which pages, how far each
    is scrolled and how long it is read."""
    n_s = len(sess["visitor_idx"])
    bounce = rng.random(n_s) < 0.42
    n_pages = np.where(bounce, 1, 2 + rng.geometric(0.38, n_s) - 1)
    n_pages = np.where(sess["is_bot"], rng.integers(1, 9, n_s), n_pages)
    n_pages = np.where(sess["converts"], np.maximum(n_pages, 2), np.minimum(n_pages, 25))
    sess["n_pages"] = n_pages.astype(np.int32)

    pv_sess = np.repeat(np.arange(n_s), n_pages)
    pv_pos = _group_index(n_pages)
    n_pv = len(pv_sess)
    nav_idx, nav_p = _weights(m.NAV_WEIGHTS)
    pv_page = nav_idx[rng.choice(len(nav_idx), n_pv, p=nav_p)]
    landing_kind = np.array([s.landing for s in m.SOURCES])[sess["source_idx"]][pv_sess]
    first = pv_pos == 0
    for kind, weights in m.LANDING_WEIGHTS.items():
        li, lp = _weights(weights)
        sel = first & (landing_kind == kind)
        pv_page[sel] = li[rng.choice(len(li), int(sel.sum()), p=lp)]
    # A few visits hit the pages that carry an e-mail address.
    trap = rng.random(n_pv) < 0.002
    pv_page[trap] = rng.choice(m.PRIVACY_TRAP_PAGES, int(trap.sum()))
    # Converting sessions: the CTA is clicked on the second-to-last page, the last is the booking
    # page.
    pv_last = pv_pos == n_pages[pv_sess] - 1
    pv_conv_sess = sess["converts"][pv_sess]
    pv_page[pv_conv_sess & pv_last] = m.BOOK_A_CALL
    pv_cta = pv_conv_sess & (pv_pos == n_pages[pv_sess] - 2)

    kinds = np.array([p.kind for p in m.PAGES])
    pv_kind = kinds[pv_page]
    depth_level = np.zeros(n_pv, dtype=np.int8)
    dwell_s = np.zeros(n_pv)
    for kind, sw in m.SCROLL_WEIGHTS.items():
        sel = pv_kind == kind
        depth_level[sel] = rng.choice(5, int(sel.sum()), p=sw)
        dwell_s[sel] = rng.lognormal(np.log(m.DWELL_MEDIAN_S[kind]), 0.9, int(sel.sum()))
    depth_level[pv_cta] = np.maximum(depth_level[pv_cta], rng.integers(2, 5, int(pv_cta.sum())))
    is_bot_pv = sess["is_bot"][pv_sess]
    depth_level[is_bot_pv] = 0
    dwell_s = np.where(is_bot_pv, rng.random(n_pv) * 3 + 0.2, np.clip(dwell_s, 2.0, 1500.0))
    dwell_us = (dwell_s * US).astype(np.int64)
    gap_us = (rng.random(n_pv) * 2.5 * US + 0.3 * US).astype(np.int64)
    step = dwell_us + gap_us
    csum = np.cumsum(step)
    sess_first_pv = np.cumsum(n_pages) - n_pages
    offset = csum - step - (csum - step)[sess_first_pv][pv_sess]
    return _PageViews(sess=pv_sess, pos=pv_pos, page=pv_page, last=pv_last,
                      converting=pv_conv_sess, cta=pv_cta, kind=pv_kind,
                      depth_level=depth_level, dwell_s=dwell_s, dwell_us=dwell_us,
                      start_us=sess["start_us"][pv_sess] + offset, is_bot=is_bot_pv)


def _events(cfg: SimConfig, rng: np.random.Generator, sess: dict[str, np.ndarray],
            pv: _PageViews) -> dict[str, np.ndarray]:
    """Every event of every page view (page view, scroll and time milestones, CTA, forms, exit
    intent, custom), ordered by session, true time and type."""
    human_pv = ~pv.is_bot
    pv_start, dwell_us = pv.start_us, pv.dwell_us
    parts: list[dict[str, np.ndarray]] = []

    def add(rows: np.ndarray, etype: str, t: np.ndarray, prop: np.ndarray | int = 0) -> None:
        parts.append({
            "pv": rows.astype(np.int64),
            "type": np.full(len(rows), ET[etype], dtype=np.int8),
            "t_us": t.astype(np.int64),
            "prop": np.broadcast_to(np.asarray(prop, dtype=np.int32), len(rows)).copy(),
        })

    all_pv = np.arange(len(pv.sess))
    add(all_pv, "page_view", pv_start)
    # Scroll milestones spread over the visible time.
    k = pv.depth_level.astype(np.int64)
    rep = np.repeat(all_pv, k)
    j = _group_index(k) + 1
    add(rep, "scroll_depth", pv_start[rep] + dwell_us[rep] * j // (k[rep] + 1),
        np.array(SCROLL_DEPTHS)[j - 1])
    # Visible-time milestones below the dwell time.
    tm = np.array(TIME_MILESTONES)
    n_time = np.where(human_pv, (pv.dwell_s[:, None] > tm[None, :]).sum(axis=1), 0)
    rep = np.repeat(all_pv, n_time)
    j = _group_index(n_time)
    add(rep, "time_on_page", pv_start[rep] + tm[j] * US, tm[j])
    cta = all_pv[pv.cta]
    add(cta, "cta_click", pv_start[cta] + dwell_us[cta] * 9 // 10)
    book = all_pv[pv.converting & pv.last]
    fstart = book[rng.random(len(book)) < cfg.form_start_rate]
    add(fstart, "form_start", pv_start[fstart] + dwell_us[fstart] * 3 // 10)
    fsub = fstart[rng.random(len(fstart)) < cfg.form_submit_rate]
    add(fsub, "form_submit", pv_start[fsub] + dwell_us[fsub] * 8 // 10)
    # Contact form on the contact page, which is not a conversion (props.form says which form).
    contact = all_pv[(pv.page == m.PAGE_INDEX["/contact"]) & human_pv]
    cstart = contact[rng.random(len(contact)) < 0.15]
    add(cstart, "form_start", pv_start[cstart] + dwell_us[cstart] * 3 // 10, 1)
    csub = cstart[rng.random(len(cstart)) < 0.5]
    add(csub, "form_submit", pv_start[csub] + dwell_us[csub] * 8 // 10, 1)
    exits = all_pv[pv.last & human_pv & (sess["device"][pv.sess] == 0)]
    exits = exits[rng.random(len(exits)) < 0.35]
    add(exits, "exit_intent", pv_start[exits] + dwell_us[exits] - US // 2)
    custom = all_pv[human_pv & (pv.kind == "content")]
    custom = custom[rng.random(len(custom)) < 0.04]
    add(custom, "custom", pv_start[custom] + dwell_us[custom] // 2)

    ev = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    ev["session_idx"] = pv.sess[ev["pv"]]
    order = np.lexsort((ev["type"], ev["t_us"], ev["session_idx"]))
    ev = {key: v[order] for key, v in ev.items()}
    ev["page_idx"] = pv.page[ev["pv"]]
    # document.referrer: the source's referrer on the landing page, the previous page after it.
    pv_prev_page = np.where(pv.pos > 0, np.roll(pv.page, 1), -1)
    ev["prev_page_idx"] = pv_prev_page[ev["pv"]].astype(np.int16)
    return ev


def _deliveries(cfg: SimConfig, rng: np.random.Generator, sess: dict[str, np.ndarray],
                ev: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every copy that reaches the collector: batching, clock skew, latency, late retries,
    duplicates; none after ``cfg.until``."""
    n_ev = len(ev["t_us"])
    s_of = ev["session_idx"]
    send = ev["t_us"] + (rng.random(n_ev) * 5 * US + 0.1 * US).astype(np.int64)
    latency = (rng.random(n_ev) * 0.6 * US + 0.03 * US).astype(np.int64)
    r = rng.random(n_ev)
    retry = np.where(r < cfg.late_share, rng.uniform(1, 3, n_ev) * 3600 * US, 0)
    retry = np.where(r > 1 - cfg.very_late_share, rng.uniform(24, 40, n_ev) * 3600 * US, retry)
    send = send + retry.astype(np.int64)
    ingest = send + latency
    # Duplicates: a retry of an acknowledged request, seconds, minutes or hours later.
    dup = np.flatnonzero(rng.random(n_ev) < cfg.duplicate_share)
    rd = rng.random(len(dup))
    dup_delay_s = np.where(rd < 0.6, rng.uniform(0.1, 30, len(dup)),
                           np.where(rd < 0.9, rng.uniform(300, 3000, len(dup)),
                                    rng.uniform(3600, 3 * 3600, len(dup))))
    dup_delay = (dup_delay_s * US).astype(np.int64)
    idx = np.concatenate([np.arange(n_ev), dup])
    d_send = np.concatenate([send, send[dup] + dup_delay])
    d_ingest = np.concatenate([ingest, ingest[dup] + dup_delay])
    skew = sess["skew_us"][s_of[idx]]
    deliveries = {
        "event_idx": idx,
        "event_ts_us": ev["t_us"][idx] + skew,
        "sent_ts_us": np.where(sess["has_sent_ts"][s_of[idx]], d_send + skew, -1),
        "ingest_us": d_ingest,
        "is_duplicate": np.concatenate([np.zeros(n_ev, bool), np.ones(len(dup), bool)]),
    }
    if cfg.until is not None:
        arrived = deliveries["ingest_us"] <= int(cfg.until.timestamp() * US)
        deliveries = {k: v[arrived] for k, v in deliveries.items()}
    return deliveries
