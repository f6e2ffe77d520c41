"""SQL playground: read-only queries on the warehouse (the sandbox is ``sandbox.py``)."""

import pandas as pd
import plotly.express as px
import streamlit as st

from analytics_platform.dashboard.examples import EXAMPLES
from analytics_platform.dashboard.frame import current
from analytics_platform.dashboard.sandbox import PlaygroundError, run_query

frame = current()
st.header("SQL playground")
st.caption("Read-only: the warehouse's tables (" + ", ".join(sorted(frame.warehouse.tables))
           + "). At most 10,000 rows and 10 s per query.")
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
        numeric = df.select_dtypes("number").columns
        if len(df.columns) >= 2 and len(numeric) >= 1 and df.columns[0] not in numeric \
                and len(df) <= 500:
            fig = px.bar(df, x=df.columns[0], y=numeric[0])
            fig.update_layout(height=300, margin={"l": 0, "r": 0, "t": 10, "b": 0})
            st.plotly_chart(fig, width="stretch", key="sql_chart")
        st.dataframe(df, hide_index=True, width="stretch")
        st.download_button("Download CSV", df.to_csv(index=False).encode(),
                           file_name="query.csv", mime="text/csv", key="download")
