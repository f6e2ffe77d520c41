"""What a simulation intended, counted from its own arrays (not from the raw lake)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics_platform.simulate import model as m
from analytics_platform.simulate.traffic import ET, US, Traffic


@dataclass(frozen=True)
class Truth:
    human_sessions: int
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
            f"Intended: {self.human_sessions:,} human sessions ({self.bot_sessions:,} bot), "
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
    # A session converts when it has a cta_click event (SPEC §4).
    conv = np.zeros(len(human), dtype=bool)
    conv[ev["session_idx"][ev["type"] == ET["cta_click"]]] = True
    by_v = {v: int((human & (s["variant"] == i)).sum()) for i, v in enumerate(m.VARIANTS)}
    conv_v = {v: int((conv & human & (s["variant"] == i)).sum()) for i, v in enumerate(m.VARIANTS)}
    late = int((d["ingest_us"] - ev["t_us"][d["event_idx"]] > 3600 * US).sum())
    return Truth(
        human_sessions=int(human.sum()),
        bot_sessions=int((~human).sum()),
        human_events=int(ev_human.sum()),
        deliveries=len(d["event_idx"]),
        duplicate_deliveries=int(d["is_duplicate"].sum()),
        late_deliveries=late,
        converting_sessions=int((conv & human).sum()),
        sessions_by_variant=by_v,
        conversions_by_variant=conv_v,
    )
