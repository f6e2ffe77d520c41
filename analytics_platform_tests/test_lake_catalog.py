"""The Glue tables over the Parquet lake (infra/modules/catalog) hold the columns the pipeline
really writes.

A small backfill (two simulated days, plus one bad record so `quarantine` exists) writes the lake;
pyarrow reads the schema of every file. Those schemas are compared, both ways and type by type
(Arrow → Hive), with ``infra/modules/catalog/lake_tables.json`` (the one file Terraform takes
the columns from) and with the Glue tables of a real ``terraform plan`` of the module (offline:
the provider mirror, fake credentials), read back with ``terraform show -json``. A column added to
a mart without updating the JSON fails here, and so does a JSON edit Terraform does not carry.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics_platform import contract, layout
from analytics_platform.backfill import run_backfill
from analytics_platform.lake import open_raw_lake, parse_s3_url
from analytics_platform.simulate import SimConfig, generate, write_traffic
from analytics_platform.storage import Lake
from analytics_platform_tests.test_infra import MIRROR, ROOT, TERRAFORM, tf

CATALOG = ROOT / "infra" / "modules" / "catalog"
SCHEMA_FILE = CATALOG / "lake_tables.json"
DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)
BUCKET = "example-com-analytics"
LAKE_URL = f"s3://{BUCKET}/lake"
# How each partition folder becomes a Glue partition key (lake.tf's local.lake_partitions).
KEY_TYPES = {layout.HOUR: "string", layout.DAY: "date"}
# Java date patterns (Athena's projection.*.format) → strftime, for the patterns lake.tf uses.
JAVA_TO_STRFTIME = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("'T'", "T")]


def hive_type(t: pa.DataType) -> str:
    """The Hive (Glue) type Athena reads an Arrow/Parquet type as, without loss where it can.

    Unsigned 64-bit (``visitor_key``: INT64 annotated UINT_64) is ``bigint``, not the
    ``decimal(20,0)`` Spark maps it to: Trino's Parquet reader (Athena engine v3) reads a
    ``decimal(20,0)`` column only from a DECIMAL-annotated file column and fails the query on an
    integer-annotated one ("Unsupported Trino column type"), while ``bigint`` takes any INT64 with
    an integer annotation, the unsigned one included (ColumnReaderFactory). The 64 bits are read
    as two's complement: a key past 2^63 is negative, one-to-one, so distinct counts are exact."""
    simple = [(pa.types.is_string, "string"), (pa.types.is_large_string, "string"),
              (pa.types.is_boolean, "boolean"), (pa.types.is_int8, "tinyint"),
              (pa.types.is_int16, "smallint"), (pa.types.is_int32, "int"),
              (pa.types.is_int64, "bigint"), (pa.types.is_uint8, "smallint"),
              (pa.types.is_uint16, "int"), (pa.types.is_uint32, "bigint"),
              (pa.types.is_uint64, "bigint"), (pa.types.is_float32, "float"),
              (pa.types.is_float64, "double"), (pa.types.is_date32, "date"),
              (pa.types.is_timestamp, "timestamp"), (pa.types.is_binary, "binary")]
    for test, name in simple:
        if test(t):
            return name
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{hive_type(t.value_type)}>"
    if pa.types.is_map(t):
        return f"map<{hive_type(t.key_type)},{hive_type(t.item_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{hive_type(f.type)}" for f in t) + ">"
    raise AssertionError(f"no Hive type for Arrow {t}: add it to hive_type() and lake.tf")


def partition_of(folder: str) -> str:
    """The partition kind of a lake folder: ``hour``, ``date`` or ``all``."""
    return folder.split("=", 1)[0] if "=" in folder else folder


def render(tables: dict[str, Any]) -> str:
    """lake_tables.json's layout: one column a line, in the files' order (printed by a failing
    test, ready to paste)."""
    out = []
    for name, t in sorted(tables.items()):
        cols = ",\n".join(f"        [{json.dumps(c)}, {json.dumps(h)}]" for c, h in t["columns"])
        out.append(f'    "{name}": {{\n      "partition": "{t["partition"]}",\n'
                   f'      "columns": [\n{cols}\n      ]\n    }}')
    return ",\n".join(out)


@pytest.fixture(scope="module")
def lake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake written by the pipeline: two simulated days and a malformed record."""
    data = tmp_path_factory.mktemp("catalog") / "data"
    raw = open_raw_lake(data / "raw")
    write_traffic(generate(SimConfig(days=2, visitors_per_day=120, start=DAY1, seed=11)), raw,
                  progress=False)
    raw.write_records(datetime(2026, 3, 2, 10, 0, 1, tzinfo=UTC),
                      gzip.compress(b'{"event_type": "page_view", "event_id": \n'),
                      object_id="malformed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANALYTICS_DATA_DIR", str(data))
        mp.delenv("ANALYTICS_RAW_URL", raising=False)
        mp.delenv("ANALYTICS_LAKE_URL", raising=False)
        with dg.DagsterInstance.ephemeral() as instance:
            report = run_backfill(DAY1, DAY2, instance=instance, log=lambda _: None)
    assert report.success
    return data / "lake"


@pytest.fixture(scope="module")
def written(lake_root: Path) -> dict[str, dict[str, Any]]:
    """Per published table: its partition kind, its columns as Hive types (in file order), and
    its files. Every file of a table must have the same schema: Glue has one."""
    tables: dict[str, dict[str, Any]] = {}
    for name in Lake(lake_root.parent, remote_url="").tables():
        files = sorted((lake_root / name).glob("*/*.parquet"))
        kinds = {partition_of(f.parent.name) for f in files}
        assert len(kinds) == 1, f"{name}: files in several kinds of folder {kinds}"
        schemas = {tuple((f.name, hive_type(f.type)) for f in pq.read_schema(p)) for p in files}
        assert len(schemas) == 1, f"{name}: files with different schemas {schemas}"
        tables[name] = {"partition": kinds.pop(), "columns": [list(c) for c in schemas.pop()],
                        "files": files}
    return tables


@pytest.fixture(scope="module")
def declared() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())["tables"]


def test_the_backfill_wrote_every_kind_of_table(written: dict[str, Any]) -> None:
    kinds = {t["partition"] for t in written.values()}
    assert kinds == {layout.HOUR, layout.DAY, layout.ALL}, kinds
    for table in ("events", "quarantine", "sessions", "session_events", "kpis_daily",
                  "attribution_touch"):
        assert table in written, sorted(written)
    assert layout.LATE_EVENTS not in written  # bookkeeping: no view, no Glue table


def test_schema_file_matches_the_parquet_files(written: dict[str, Any],
                                               declared: dict[str, Any]) -> None:
    """Both ways: every published table is declared and nothing else; per table the same
    partition folder and the same columns with the same Hive types."""
    actual = {n: {"partition": t["partition"], "columns": t["columns"]} for n, t in written.items()}
    problems = []
    for name in sorted(set(actual) | set(declared)):
        if name not in declared:
            problems.append(f"{name}: written by the pipeline, missing from lake_tables.json")
            continue
        if name not in actual:
            problems.append(f"{name}: in lake_tables.json, but the pipeline writes no such table")
            continue
        a, d = actual[name], declared[name]
        if a["partition"] != d["partition"]:
            problems.append(f"{name}: folder {a['partition']!r}, declared {d['partition']!r}")
        a_cols, d_cols = dict(map(tuple, a["columns"])), dict(map(tuple, d["columns"]))
        for col in sorted(set(a_cols) | set(d_cols)):
            if a_cols.get(col) != d_cols.get(col):
                problems.append(f"{name}.{col}: files {a_cols.get(col)}, "
                                f"declared {d_cols.get(col)}")
    assert not problems, ("lake_tables.json does not match what the pipeline writes:\n  "
                          + "\n  ".join(problems)
                          + f"\n\nThe tables as written (for {SCHEMA_FILE.name}):\n"
                          + render(actual))


def test_projection_formats_are_the_folder_names(written: dict[str, Any]) -> None:
    """The projection's Java date formats (lake.tf) produce exactly the folder names the
    pipeline writes (layout.py), zero padding included."""
    lake_tf = (CATALOG / "lake.tf").read_text()
    for kind in (layout.HOUR, layout.DAY):
        block = re.search(rf"\n    {kind} = \{{(.*?)\n    \}}", lake_tf, re.S)
        assert block, f"lake.tf has no projection for {kind}"
        java = re.search(r'format = "(.*?)"', block.group(1)).group(1)
        fmt = java
        for j, p in JAVA_TO_STRFTIME:
            fmt = fmt.replace(j, p)
        assert fmt == (layout.HOUR_FORMAT if kind == layout.HOUR else layout.DAY_FORMAT), java
        for t in (t for t in written.values() if t["partition"] == kind):
            for f in t["files"]:
                value = f.parent.name.split("=", 1)[1]
                assert datetime.strptime(value, fmt).strftime(fmt) == value, f


# --- the plan ------------------------------------------------------------------------------

needs_terraform = pytest.mark.skipif(
    TERRAFORM is None or MIRROR is None,
    reason="terraform, or an offline mirror of the hashicorp/aws provider (TF_PLUGIN_DIR), is "
    "not installed here",
)

ROOT_MODULE = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}
module "catalog" {
  source = "./catalog"
  name   = "analytics"
  bucket = "%s"
}
"""


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``terraform plan -out`` of the catalog module, as ``terraform show -json`` prints it."""
    work = tmp_path_factory.mktemp("lake-plan")
    shutil.copytree(CATALOG, work / "catalog",
                    ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "tests"))
    (work / "main.tf").write_text(ROOT_MODULE % BUCKET)
    for args in (["init", "-backend=false", f"-plugin-dir={MIRROR}", "-input=false"],
                 ["plan", "-input=false", "-refresh=false", "-no-color", "-out=tfplan"]):
        out = tf(args, work)
        assert out.returncode == 0, out.stdout + out.stderr
    show = tf(["show", "-json", "tfplan"], work)
    assert show.returncode == 0, show.stderr
    return json.loads(show.stdout)


def planned(plan: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    resources = []
    for module in plan["planned_values"]["root_module"].get("child_modules", []):
        resources += [r for r in module.get("resources", []) if r["type"] == kind]
    return resources


@needs_terraform
def test_plan_glue_tables_match_the_parquet_files(plan: dict[str, Any],
                                                  written: dict[str, Any]) -> None:
    """The plan's Glue tables, columns and partition keys, against the files: the same tables,
    every file column once (a column named like the partition key is the key), the key's type
    that of the file's column when there is one."""
    tables = {r["values"]["name"]: r["values"] for r in planned(plan, "aws_glue_catalog_table")
              if r["name"] == "lake"}
    assert set(tables) == set(written), (sorted(tables), sorted(written))
    for name, t in written.items():
        glue = tables[name]
        sd = glue["storage_descriptor"][0]
        keys = {k["name"]: k["type"] for k in glue["partition_keys"]}
        cols = {c["name"]: c["type"] for c in sd["columns"]}
        assert not set(keys) & set(cols), f"{name}: a name both column and partition key"
        files = dict(map(tuple, t["columns"]))
        if t["partition"] == layout.ALL:
            assert keys == {}, f"{name}: all-history, no partition key"
        else:
            key_type = KEY_TYPES[t["partition"]]
            assert keys == {t["partition"]: key_type}, (name, keys)
            assert files.get(t["partition"], key_type) == key_type, (name, files)
            files[t["partition"]] = key_type
        assert {**cols, **keys} == files, f"{name}: Glue {cols | keys} != files {files}"
        assert sd["ser_de_info"][0]["serialization_library"].endswith("ParquetHiveSerDe")


# How Glue types each kind of field of the contract (contract.Kind) in the raw JSON: uuids and
# timestamps stay text as the handler wrote them, props is the JSON object of CONTRACT §1.
RAW_KIND_TYPES = {"string": "string", "uuid": "string", "timestamp": "string", "integer": "int",
                  "boolean": "boolean", "props": "map<string,string>"}


def stored_raw_columns() -> list[tuple[str, str]]:
    """The columns of a stored raw record, in contract.py's order: the client's fields the
    handler keeps (STORED_FIELD_NAMES), then the ones it adds (RAW_FIELDS)."""
    kinds = {f.name: f.kind for f in (*contract.FIELDS, *contract.RAW_FIELDS)}
    names = [*contract.STORED_FIELD_NAMES, *contract.RAW_EXTRA_FIELDS]
    return [(n, RAW_KIND_TYPES[kinds[n]]) for n in names]


@needs_terraform
def test_plan_raw_events_has_every_stored_field(plan: dict[str, Any]) -> None:
    """raw_events (the Athena table over raw/) has a column for every field the ingest side
    stores, with the contract's kind, and nothing else; a field added to contract.py without the
    table fails here (visitor_hash, consent, country and country_source once did)."""
    [table] = [r["values"] for r in planned(plan, "aws_glue_catalog_table")
               if r["name"] == "raw_events"]
    columns = [(c["name"], c["type"]) for c in table["storage_descriptor"][0]["columns"]]
    expected = stored_raw_columns()
    assert dict(columns) == dict(expected), (
        f"missing {sorted(dict(expected).items() - dict(columns).items())}, "
        f"extra {sorted(dict(columns).items() - dict(expected).items())}")
    assert columns == expected, "in contract.py's order, as `SELECT *` shows them"
    assert not {c for c, _ in columns} & {k["name"] for k in table["partition_keys"]}


@needs_terraform
def test_plan_locations_are_where_the_pipeline_puts_the_files(plan: dict[str, Any],
                                                              written: dict[str, Any]) -> None:
    """Every file's S3 key under ANALYTICS_LAKE_URL (as storage.py uploads it) is one the
    table's projection (or location, for the all-history marts) points at."""
    bucket, prefix = parse_s3_url(LAKE_URL)
    tables = {r["values"]["name"]: r["values"] for r in planned(plan, "aws_glue_catalog_table")
              if r["name"] == "lake"}
    for name, t in written.items():
        glue = tables[name]
        params = glue["parameters"]
        for f in t["files"]:
            key = f"s3://{bucket}/{prefix}{f.relative_to(f.parents[2]).as_posix()}"
            if t["partition"] == layout.ALL:
                assert "projection.enabled" not in params
                folder = glue["storage_descriptor"][0]["location"]
            else:
                kind = t["partition"]
                assert params["projection.enabled"] == "true"
                assert params[f"projection.{kind}.type"] == "date"
                value = f.parent.name.split("=", 1)[1]
                folder = params["storage.location.template"].replace(f"${{{kind}}}", value)
            assert key == folder + f.name, (key, folder)


@needs_terraform
def test_no_crawler_anywhere(plan: dict[str, Any]) -> None:
    """Partition projection, never a crawler (a crawler costs per run and lags the files)."""
    assert planned(plan, "aws_glue_crawler") == []
    assert planned(plan, "aws_glue_catalog_table")
    tf_files = (ROOT / "infra").rglob("*.tf")
    assert not [p for p in tf_files if '"aws_glue_crawler"' in p.read_text()]


@needs_terraform
def test_the_doc_registers_partitions_where_the_files_are(plan: dict[str, Any]) -> None:
    """Partition projection is Athena's alone: Spark through the Glue catalog and Redshift
    Spectrum see a partitioned table's partitions only once they are registered, and nothing in
    the stack registers them. docs/QUERYING.md says how; every `ALTER TABLE … ADD PARTITION` it
    shows names a projected table's key, a value in the folder format of layout.py, and the S3
    folder the table's projection points at for it (`MSCK REPAIR TABLE` finds those folders)."""
    text = (ROOT / "docs" / "QUERYING.md").read_text()
    text = re.sub(r'"\s*\n\s*"', "", text)  # a Python string split over lines
    tables = {r["values"]["name"]: r["values"] for r in planned(plan, "aws_glue_catalog_table")
              if r["name"] == "lake"}
    adds = re.findall(r"ALTER TABLE \w+\.(\w+) ADD IF NOT EXISTS\s+PARTITION \(`?(\w+)`?\s*=\s*"
                      r"'([^']+)'\)\s+LOCATION '([^']+)'", text)
    kinds = set()
    for table, key, value, location in adds:
        params = tables[table]["parameters"]
        assert [k["name"] for k in tables[table]["partition_keys"]] == [key], (table, key)
        assert params["projection.enabled"] == "true", table
        fmt = layout.HOUR_FORMAT if key == layout.HOUR else layout.DAY_FORMAT
        assert datetime.strptime(value, fmt).strftime(fmt) == value, (table, value)
        assert location == params["storage.location.template"].replace(f"${{{key}}}", value)
        kinds.add(key)
    assert kinds == {layout.HOUR, layout.DAY}, f"an hourly and a daily example: {adds}"
    repaired = re.findall(r"MSCK REPAIR TABLE analytics_analytics\.(\w+)", text)
    assert repaired and all(tables[t]["partition_keys"] for t in repaired), repaired


# --- the doc's queries ---------------------------------------------------------------------

def athena_queries() -> list[str]:
    """The Athena examples of docs/QUERYING.md: its ```sql blocks over the Glue database."""
    text = (ROOT / "docs" / "QUERYING.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", text, re.S)
    return [b for b in blocks if "analytics_analytics." in b]


@pytest.fixture(scope="module")
def glue_duck(lake_root: Path, declared: dict[str, Any]) -> Iterator[Any]:
    """DuckDB standing in for Trino over the backfill's files, read as Glue reads them: one view
    per table in `analytics_analytics`, the partition folder a column of the key's type."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE SCHEMA analytics_analytics")
    for name, t in declared.items():
        files = f"{lake_root}/{name}/*/*.parquet"
        if t["partition"] == layout.ALL:
            con.execute(f"CREATE VIEW analytics_analytics.{name} AS "
                        f"SELECT * FROM read_parquet('{files}', hive_partitioning = false)")
        else:
            key, key_type = t["partition"], KEY_TYPES[t["partition"]]
            con.execute(f"CREATE VIEW analytics_analytics.{name} AS SELECT * REPLACE "
                        f"(CAST({key} AS {'VARCHAR' if key_type == 'string' else 'DATE'}) "
                        f"AS {key}) FROM read_parquet('{files}', hive_partitioning = true)")
    yield con
    con.close()


def test_the_doc_queries_run_on_the_tables_as_glue_describes_them(glue_duck: Any) -> None:
    """Each example runs (DuckDB standing in for Trino: the queries keep to SQL both accept)
    over the backfill's files and returns rows; `current_date` is the backfill's last day."""
    queries = athena_queries()
    assert len(queries) >= 5, "the Athena examples of docs/QUERYING.md"
    for q in queries:
        sql = q.replace("current_date", f"DATE '{DAY2}'")
        rows = glue_duck.execute(sql).fetchall()
        assert rows, f"no rows from:\n{q}"


def test_the_doc_counts_visitors_as_the_contract_does(glue_duck: Any, lake_root: Path) -> None:
    """The example that counts visitors from `sessions` counts those of CONTRACT §3.6, the
    consented `visitor_id` or else the day's `visitor_hash`: per device, the same number as the
    pipeline's own key of that visitor (`visitor_key`, what the marts count) over the same
    sessions. `count(DISTINCT visitor_id)` alone counted the consented visitors only (NULL
    without consent)."""
    [query] = [q for q in athena_queries()
               if "FROM analytics_analytics.sessions" in q and "visitors" in q]
    got = {row[0]: row[2] for row in glue_duck.execute(query).fetchall()}
    expected = dict(glue_duck.execute(
        "SELECT device_type, count(DISTINCT visitor_key) "
        f"FROM read_parquet('{lake_root}/sessions/*/*.parquet') GROUP BY device_type").fetchall())
    assert got == expected
    # the backfill has both kinds of visitor, so the check means something
    consented, hashed = glue_duck.execute(
        "SELECT count(*) FILTER (visitor_id IS NOT NULL), count(*) FILTER (visitor_id IS NULL) "
        "FROM analytics_analytics.sessions").fetchone()
    assert consented and hashed, (consented, hashed)
