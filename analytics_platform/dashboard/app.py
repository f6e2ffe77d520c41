"""The site owner's dashboard (Streamlit): `analytics-platform dashboard`.

Reads `$ANALYTICS_DATA_DIR/warehouse.duckdb` read-only (it can run while the pipeline writes).
This entrypoint is the frame around every view: the page config, the navigation, the sidebar's
dates and filters (``frame.py``); each view is a file of its own in ``views/``.
"""

import streamlit as st

from analytics_platform.dashboard import frame
from analytics_platform.dashboard.frame import DATES, View, all_off

JOURNEYS_OFF = ("Journeys come only from the journeys_daily mart, which publishes a path only "
                "when at least k visitors took it that day (CONTRACT §5); counting the paths "
                "of a subset of sessions would show paths fewer than k people took.")
VIEWS = [
    View("overview.py", "Overview"),
    View("sources.py", "Sources"),
    View("devices.py", "Devices"),
    View("locations.py", "Locations"),
    View("behaviour.py", "Behaviour"),
    View("vitals.py", "Web vitals"),
    View("goals.py", "Goals"),
    View("funnel.py", "Funnel"),
    View("journeys.py", "Journeys", off={k: JOURNEYS_OFF for k in frame.ALL_FILTERS - {DATES}}),
    View("cohorts.py", "Cohorts"),
    View("experiments.py", "Experiments"),
    # reads the raw lake, not the warehouse: works before any backfill
    View("realtime.py", "Realtime", needs_data=False, off=all_off(
        "Realtime counts the raw events of the last 30 minutes, before they are made into "
        "sessions: they have no source, country or goal yet.")),
    # the playground runs on warehouses of any version
    View("sql.py", "SQL", needs_current_sessions=False,
         off=all_off("The playground runs the query as written.")),
]

frame.set_page_config()
# before anything can be clicked: a click on the navigation empties the address (keep_address)
frame.keep_address()
# expanded: every view listed (Streamlit folds a list of more than ten behind "View more")
chosen = st.navigation({"Analytics": [v.page() for v in VIEWS]}, expanded=True)
frame.draw(next(v for v in VIEWS if v.title == chosen.title))
chosen.run()
st.sidebar.caption(f"Warehouse: {frame.warehouse_path()}")
