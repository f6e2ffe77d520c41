"""The one query layer of the dashboard and the API: metrics, dimensions and filters
(``stats.py``) turned into SQL over the warehouse (``warehouse.py``, read-only), the
hand-written queries of the dashboard's other panels (``sql/``), and exports (``export.py``)."""
