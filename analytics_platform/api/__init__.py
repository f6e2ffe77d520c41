"""The read-only HTTP API: Plausible's Stats API v2 and exports (``app.py``), API keys and their
rate limit (``keys.py``), the OpenAPI document (``openapi.py``)."""
