"""Experiments: conversion by variant, lift against the baseline and whether it is significant,
over the sessions of the dates and filters."""

import pandas as pd
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import header, p_value, query, show_table

filters = header("Experiments")
st.caption("Sessions that carried an experiment and a variant, in these dates and filters; "
           "lift is the relative difference of conversion rates against the baseline "
           "(the variant named control, else the first by name); significance is a two-sided "
           "two-proportion z-test at 5%.")
counts = query(*Q.experiments(filters))
if counts.empty:
    st.info("No experiment data in these dates and filters: pages declare one with "
            "`<html data-analytics-experiment=… data-analytics-variant=…>`.")
else:
    exp = Q.compare_variants(counts)
    for name, rows in exp.groupby("experiment"):
        st.subheader(name)
        base = rows[rows.variant == rows.baseline].iloc[0]
        table = rows.assign(
            lift=[("baseline" if v == b else ("–" if pd.isna(x) else f"{x:+.1%}"))
                  for v, b, x in zip(rows.variant, rows.baseline, rows.lift, strict=True)],
            p_value=[("baseline" if v == b else p_value(p).removeprefix("p = "))
                     for v, b, p in zip(rows.variant, rows.baseline, rows.p_value,
                                        strict=True)])
        show_table(table, ["variant", "sessions", "conversions", "conversion_rate", "lift",
                           "p_value"], key=f"experiment_{name}")
        for r in rows.itertuples():
            if r.variant == r.baseline:
                continue
            rates = (f"{r.conversion_rate:.2%} vs {base.conversion_rate:.2%} for "
                     f"{r.baseline}, {r.sessions:,} and {base.sessions:,} sessions")
            if pd.isna(r.p_value) or pd.isna(r.lift):
                st.info(f"**{r.variant}**: not enough data to compare with {r.baseline} "
                        f"({rates}).")
            elif r.p_value < 0.05:
                better = "better" if r.lift > 0 else "worse"
                st.success(f"**{r.variant}** converts {abs(r.lift):.0%} {better} than "
                           f"{r.baseline} ({rates}) — significant ({p_value(r.p_value)}).")
            else:
                st.warning(f"**{r.variant}**: {r.lift:+.0%} against {r.baseline} ({rates}), "
                           f"not yet significant ({p_value(r.p_value)}); keep the test "
                           "running.")
