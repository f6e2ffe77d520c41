"""The dashboard's views, one Streamlit page each: run by the entrypoint (``app.py``) through
``st.navigation``, never imported."""
