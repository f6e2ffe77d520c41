"""SQL playground: read-only queries on the warehouse (the sandbox is ``sandbox.py``), with the
tables and columns to write them from."""

import re
from collections.abc import Hashable

import pandas as pd
import plotly.express as px
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.examples import EXAMPLES
from analytics_platform.dashboard.frame import current, header, query
from analytics_platform.dashboard.sandbox import PlaygroundError, run_query

# Columns that name a row rather than measure it: never the chart's default value.
KEYISH = re.compile(r"(^|_)(id|key|offset|step|steps|week|month|year|day|date|hour|minute|"
                    r"rank|order|version|width)$")


def distinct_names(columns: pd.Index) -> list[str]:
    """``columns`` with the second and later of a name numbered: page_path, page_path (2)."""
    seen: dict[str, int] = {}
    names = []
    for c in map(str, columns):
        seen[c] = seen.get(c, 0) + 1
        names.append(c if seen[c] == 1 else f"{c} ({seen[c]})")
    return names

frame = current()
header("SQL playground")
st.caption("Read-only, one SELECT; at most 10,000 rows and 10 s per query. The sidebar's "
           "filters do not apply: the query runs as written.")
with st.expander("Tables and columns"):
    cols = query(Q.COLUMNS_SQL)
    st.dataframe(pd.DataFrame({"table": cols.table_name,
                               "columns": cols.column_list.map(", ".join)}),
                 hide_index=True, width="stretch",
                 column_config={"table": st.column_config.TextColumn("Table", width="small"),
                                "columns": st.column_config.TextColumn("Columns (type)",
                                                                       width="large")})
    st.caption("Every table is described in docs/CONTRACT.md (§3 events, §4 sessions, "
               "§5 marts).")
example = st.selectbox("Examples", list(EXAMPLES), key="example")
sql = st.text_area("Query", EXAMPLES[example], height=180, key=f"sql_{example}")
if st.button("Run", type="primary", key="run") or st.session_state.get("ran") == sql:
    st.session_state["ran"] = sql
    try:
        res = run_query(sql, frame.data / "warehouse.duckdb", frame.data / "lake")
    except PlaygroundError as e:
        st.error(str(e))
    else:
        df = pd.DataFrame(res.rows, columns=res.columns)
        if res.truncated:
            st.warning("Only the first 10,000 rows are shown.")
        # A join may select two columns of one name (a.page_path, b.page_path): the table shown
        # (Arrow) and the chart need distinct names; the CSV keeps the query's.
        shown = df.set_axis(distinct_names(df.columns), axis=1)
        first = shown.iloc[:, 0]
        numeric = [c for c in shown.select_dtypes("number").columns if c != shown.columns[0]]
        # a chart only when each row is one bar: a first column of labels, each once (values
        # that hash only: a list column's do not)
        if (numeric and shown.columns[0] not in shown.select_dtypes("number").columns
                and 1 < len(shown) <= 500 and all(isinstance(v, Hashable) for v in first)
                and first.is_unique):
            measures = [c for c in numeric if not KEYISH.search(c)] or numeric
            y = st.selectbox("Chart", measures, key=f"chart_{example}",
                             format_func=lambda c: f"{c} by {shown.columns[0]}")
            fig = px.bar(shown, x=shown.columns[0], y=y)
            fig.update_layout(height=300, margin={"l": 0, "r": 0, "t": 10, "b": 0})
            st.plotly_chart(fig, width="stretch", key="sql_chart")
        st.dataframe(shown, hide_index=True, width="stretch")
        st.download_button("Download CSV", df.to_csv(index=False).encode(),
                           file_name="query.csv", mime="text/csv", key="download")
