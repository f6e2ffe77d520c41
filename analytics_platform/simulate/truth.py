"""What a simulation intended, counted from its own arrays (not from the raw lake)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics_platform.contract import SESSION_INACTIVITY_MINUTES
from analytics_platform.simulate import model as m
from analytics_platform.simulate.traffic import ET, US, Traffic

INACTIVITY_US = SESSION_INACTIVITY_MINUTES * 60 * US


@dataclass(frozen=True)
class Truth:
    human_sessions: int  # visits as the simulator made them
    # the sessions the pipeline makes of them (CONTRACT §4): a consented visit is its tracker's
    # session; the others are cut per visitor_hash (visitor and UTC day of arrival) wherever
    # 30 minutes pass without an event, so two visits close together are one session and a
    # visit across midnight is two
    server_sessions: int
    consented_sessions: int
    bot_sessions: int
    human_events: int
    deliveries: int
    duplicate_deliveries: int
    late_deliveries: int  # arrived more than an hour after the event happened
    converting_sessions: int
    sessions_by_variant: dict[str, int]
    conversions_by_variant: dict[str, int]

    @property
    def conversion_rate(self) -> float:
        return self.converting_sessions / self.human_sessions if self.human_sessions else 0.0

    def variant_rate(self, variant: str) -> float:
        n = self.sessions_by_variant[variant]
        return self.conversions_by_variant[variant] / n if n else 0.0

    def to_text(self) -> str:
        lines = [
            f"Intended: {self.human_sessions:,} human visits ({self.bot_sessions:,} bot), "
            f"{self.server_sessions:,} sessions for the pipeline, "
            f"{self.consented_sessions / max(self.server_sessions, 1):.0%} of them consented, "
            f"{self.human_events:,} human events, {self.duplicate_deliveries:,} duplicate and "
            f"{self.late_deliveries:,} late deliveries.",
            f"Converting sessions (CTA click): {self.converting_sessions:,} "
            f"({self.conversion_rate:.2%}).",
        ]
        for v in m.VARIANTS:
            lines.append(
                f"  experiment {m.EXPERIMENT} / {v}: {self.sessions_by_variant[v]:,} sessions, "
                f"{self.variant_rate(v):.2%} convert"
            )
        return "\n".join(lines)


def summarize(traffic: Traffic) -> Truth:
    s, ev, d = traffic.sessions, traffic.events, traffic.deliveries
    human = ~s["is_bot"]
    ev_human = human[ev["session_idx"]]
    # A session converts when it has a cta_click event (CONTRACT §4).
    conv = np.zeros(len(human), dtype=bool)
    conv[ev["session_idx"][ev["type"] == ET["cta_click"]]] = True
    by_v = {v: int((human & (s["variant"] == i)).sum()) for i, v in enumerate(m.VARIANTS)}
    conv_v = {v: int((conv & human & (s["variant"] == i)).sum()) for i, v in enumerate(m.VARIANTS)}
    late = int((d["ingest_us"] - ev["t_us"][d["event_idx"]] > 3600 * US).sum())
    server, consented = _server_sessions(traffic)
    return Truth(
        human_sessions=int(human.sum()),
        server_sessions=server,
        consented_sessions=consented,
        bot_sessions=int((~human).sum()),
        human_events=int(ev_human.sum()),
        deliveries=len(d["event_idx"]),
        duplicate_deliveries=int(d["is_duplicate"].sum()),
        late_deliveries=late,
        converting_sessions=int((conv & human).sum()),
        sessions_by_variant=by_v,
        conversions_by_variant=conv_v,
    )


def _server_sessions(traffic: Traffic) -> tuple[int, int]:
    """(sessions, consented sessions) the pipeline makes of the human events that arrived."""
    s, ev, d = traffic.sessions, traffic.events, traffic.deliveries
    # the first copy of each event (earliest arrival) is the one that counts (CONTRACT §3.4)
    order = np.lexsort((d["ingest_us"], d["event_idx"]))
    idx, ingest = d["event_idx"][order], d["ingest_us"][order]
    # empty without a delivery (a day cut just after midnight): np.r_[True, …] is one long
    first = np.r_[True, idx[1:] != idx[:-1]][:len(idx)]
    idx, ingest = idx[first], ingest[first]
    sent, event_ts = d["sent_ts_us"][order][first], d["event_ts_us"][order][first]
    sess = ev["session_idx"][idx]
    keep = ~s["is_bot"][sess]
    ingest, sent, event_ts, sess = ingest[keep], sent[keep], event_ts[keep], sess[keep]
    # CONTRACT §3.3's ts
    ts = np.where((sent >= 0) & (sent >= event_ts), ingest - (sent - event_ts),
                  np.minimum(event_ts, ingest))
    consent = s["consent"][sess]
    consented = len(np.unique(sess[consent]))
    vis, day, t = (s["visitor_idx"][sess][~consent], ingest[~consent] // (86400 * US),
                   ts[~consent])
    o = np.lexsort((t, day, vis))
    vis, day, t = vis[o], day[o], t[o]
    new = np.r_[True, (vis[1:] != vis[:-1]) | (day[1:] != day[:-1])
                | (t[1:] - t[:-1] > INACTIVITY_US)] if len(t) else np.empty(0, bool)
    return consented + int(new.sum()), consented
