"""Experiments: conversion by variant, lift against the baseline and whether it is significant,
over the sessions of the dates and filters."""

import pandas as pd
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import header, p_value, query, show_table

filters = header("Experiments")
st.caption("Sessions that carried an experiment and a variant, in these dates and filters; "
           "lift is the relative difference of conversion rates against the baseline "
           "(the variant named control, else the first by name). Each variant is compared "
           "with the baseline by a two-sided two-proportion z-test, or Fisher's exact test "
           "when an expected count is below 5 (the test column); the p-value shown and the "
           "5% verdict are Holm-adjusted over the experiment's comparisons with the baseline, "
           "so more variants do not mean more false winners. The unit is the session: each "
           "session is treated as an independent trial, so a visitor's repeat sessions count "
           "again, and a visitor seen in more than one variant counts in each — with many "
           "repeat visits the p-values are too small.")
counts = query(*Q.experiments(filters))
if counts.empty:
    st.info("No experiment data in these dates and filters: pages declare one with "
            "`<html data-analytics-experiment=… data-analytics-variant=…>`.")
else:
    # the mart's statistics plus what the verdict rests on (the test used, the Holm-adjusted
    # p-value)
    exp = Q.compare_variants(counts, decision=True)
    for name, rows in exp.groupby("experiment"):
        st.subheader(name)
        base = rows[rows.variant == rows.baseline].iloc[0]
        m = int(rows.comparisons.iloc[0])
        table = rows.assign(
            lift=[("baseline" if v == b else ("–" if pd.isna(x) else f"{x:+.1%}"))
                  for v, b, x in zip(rows.variant, rows.baseline, rows.lift, strict=True)],
            p_value=[("baseline" if v == b else p_value(p).removeprefix("p = "))
                     for v, b, p in zip(rows.variant, rows.baseline, rows.p_adjusted,
                                        strict=True)],
            test=[("baseline" if v == b else t)
                  for v, b, t in zip(rows.variant, rows.baseline, rows.test, strict=True)])
        show_table(table, ["variant", "sessions", "conversions", "conversion_rate", "lift",
                           "p_value", "test"], key=f"experiment_{name}")
        if m > 1:
            st.caption(f"{m} comparisons with {base.variant}: p-values Holm-adjusted.")
        for r in rows.itertuples():
            if r.variant == r.baseline:
                continue
            rates = (f"{r.conversion_rate:.2%} vs {base.conversion_rate:.2%} for "
                     f"{r.baseline}, {r.sessions:,} and {base.sessions:,} sessions")
            how = (f"{p_value(r.p_adjusted)}, {r.test}"
                   + (f", Holm-adjusted over {m} comparisons" if m > 1 else ""))
            if pd.isna(r.p_adjusted):
                st.info(f"**{r.variant}**: not enough data to compare with {r.baseline} "
                        f"({rates}).")
            elif r.p_adjusted < 0.05 and pd.isna(r.lift):
                # a 0% baseline: the difference is decided by the test, the ratio is not defined
                st.success(f"**{r.variant}** converts better than {r.baseline} ({rates}) — "
                           f"significant ({how}); lift undefined (baseline 0%).")
            elif r.p_adjusted < 0.05:
                better = "better" if r.lift > 0 else "worse"
                st.success(f"**{r.variant}** converts {abs(r.lift):.0%} {better} than "
                           f"{r.baseline} ({rates}) — significant ({how}).")
            else:
                lift = ("lift undefined (baseline 0%)" if pd.isna(r.lift)
                        else f"{r.lift:+.0%}")
                st.warning(f"**{r.variant}**: {lift} against {r.baseline} ({rates}), "
                           f"not yet significant ({how}); keep the test running.")
