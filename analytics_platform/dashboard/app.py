"""The site owner's dashboard (Streamlit): `analytics-platform dashboard`.

Reads `$ANALYTICS_DATA_DIR/warehouse.duckdb` read-only (it can run while the pipeline writes).
This entrypoint is the frame around every view: the page config, the navigation, the sidebar's
dates and filters (``frame.py``); each view is a file of its own in ``views/``.
"""

import streamlit as st

from analytics_platform.dashboard import frame
from analytics_platform.dashboard.frame import View

VIEWS = [
    View("overview.py", "Overview"),
    View("sources.py", "Sources"),
    View("funnel.py", "Funnel"),
    View("cohorts.py", "Cohorts"),
    View("experiments.py", "Experiments"),
    # reads the raw lake, not the warehouse: works before any backfill
    View("realtime.py", "Realtime", needs_data=False, filtered=False),
    # the playground runs on warehouses of any version
    View("sql.py", "SQL", needs_current_sessions=False, filtered=False),
]

frame.set_page_config()
chosen = st.navigation({"Analytics": [v.page() for v in VIEWS]})
frame.draw(next(v for v in VIEWS if v.title == chosen.title))
chosen.run()
st.sidebar.caption(f"Warehouse: {frame.warehouse_path()}")
