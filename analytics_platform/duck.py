"""The pipeline's DuckDB connections: in memory, UTC, with the shared macros.

Never the warehouse file (see storage.py for why).
"""

import duckdb

from analytics_platform.settings import data_dir, duckdb_memory_limit

# The macros every pipeline statement may use. scrub: values that may never reach a table (CONTRACT
# §3.5), e-mail addresses (also URL-encoded) and IPv4 / IPv6 addresses, are replaced wherever
# free text is kept.
MACROS = r"""
CREATE OR REPLACE MACRO scrub(x) AS CASE
    -- almost no value holds an address: one cheap scan decides whether the three below run
    WHEN NOT regexp_matches(x, '@|%40|[0-9]\.[0-9]|[0-9A-Fa-f]:[0-9A-Fa-f:]') THEN x
    ELSE regexp_replace(regexp_replace(regexp_replace(x,
    -- e-mail addresses, also with the @ URL-encoded
    '[A-Za-z0-9._%+\-]+(@|%40)[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}', '(email)', 'g'),
    -- IPv4: four numbers 0-255 not part of a longer dotted run
    '(^|[^0-9.])((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])($|[^0-9.])',
    '\1(ip)\5', 'g'),
    -- IPv6: four or more hex groups, or a "::" form, standing alone (not "std::vector", "10:30")
    '(^|[^0-9A-Za-z:])([0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{1,4}){3,7}|[0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{1,4})*::([0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{1,4})*)?)($|[^0-9A-Za-z:])',
    '\1(ip)\7', 'g') END;
CREATE OR REPLACE MACRO utc(x) AS try_cast(x AS TIMESTAMPTZ) AT TIME ZONE 'UTC';
-- The dashboard counts distinct visitors on this 64-bit key of visitor_id, the first 8 bytes of
-- its MD5 (an integer hashes and compares far faster than 36 characters; MD5 is the same in every
-- DuckDB version, so partitions written years apart agree; a collision among 10M visitors has
-- odds of about 1 in 370,000).
CREATE OR REPLACE MACRO visitor_key(visitor_id) AS md5_number_upper(visitor_id);
"""


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the pipeline's macros (never the warehouse file: see storage),
    bounded in memory (``ANALYTICS_DUCKDB_MEMORY``): beyond it, DuckDB spills to disk."""
    con = duckdb.connect(config={
        "memory_limit": duckdb_memory_limit(),
        "temp_directory": str(data_dir() / ".duckdb_tmp"),
        # Rows are ordered explicitly where order matters; not keeping insertion order lets
        # DuckDB stream large writes instead of buffering them.
        "preserve_insertion_order": False,
    })
    con.execute("SET TimeZone = 'UTC'")
    con.execute(MACROS)
    return con
