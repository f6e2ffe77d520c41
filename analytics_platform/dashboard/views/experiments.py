"""Experiments: conversion by variant, lift against the baseline and whether it is significant."""

import pandas as pd
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import current, query

st.header("Experiments")
exp = query(Q.EXPERIMENTS) if "experiments" in current().warehouse.tables else pd.DataFrame()
if exp.empty:
    st.info("No experiment data: pages declare one with "
            "`<html data-analytics-experiment=… data-analytics-variant=…>`.")
for name, rows in exp.groupby("experiment"):
    st.subheader(name)
    st.dataframe(rows.drop(columns=["experiment"]), hide_index=True,
                 width="stretch", column_config={
                     "conversion_rate": st.column_config.NumberColumn(format="percent"),
                     "lift": st.column_config.NumberColumn(format="percent")})
    for r in rows.itertuples():
        if r.variant == r.baseline:
            continue
        if pd.isna(r.p_value):
            st.info(f"{r.variant}: not enough data to compare with {r.baseline}.")
        elif r.p_value < 0.05:
            better = "better" if r.lift > 0 else "worse"
            st.success(f"**{r.variant}** converts {abs(r.lift):.0%} {better} than "
                       f"{r.baseline} ({r.conversion_rate:.2%} vs baseline) — significant "
                       f"(p = {r.p_value:.3g}).")
        else:
            st.warning(f"**{r.variant}**: {r.lift:+.0%} against {r.baseline}, not yet "
                       f"significant (p = {r.p_value:.2f}); keep the test running.")
