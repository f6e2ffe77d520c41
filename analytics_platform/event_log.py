"""Dagster's SQLite event log, with the records of a partition range written in one go.

A step that covers a range of partitions (the backfill's ranged runs) writes one
ASSET_MATERIALIZATION record per partition once its work is done. Dagster's
``SqliteEventLogStorage`` stores each one on its own: an engine created, the insert compiled and
a transaction in the run's database, then the same again in the index database (the mirrored
event, its tags, the asset's entry), 10–14 ms a record; `events` writes 1,544 of them in the
30-day backfill (21 s, issue 21, docs/BENCHMARKS.md). With ``DAGSTER_EVENT_BATCH_SIZE`` > 0
(``settings.apply_dagster_defaults``) Dagster hands the records of one output's range to
``store_event_batch``, which its SQLite storage only loops over; this one writes them as
dagster-postgres does: the batch in one transaction of the run's database, then in one
transaction of the index database the mirrored events with their ids, every event's tags, and the
asset's entry from the last event (what storing them one by one leaves: each event overwrites
the entry). A no-op asset over 500 hours, one by one / batched: 19–29 s / 1.3–2.0 s of run on a
loaded machine; the 6-day backfill's `events` records: 8.4–23.5 s / 0.9–1.4 s (docs/PIPELINE.md).

Configured in ``$DAGSTER_HOME/dagster.yaml`` (the CLI's and ``serve``'s, docs/DEPLOY.md)::

    event_log_storage:
      module: analytics_platform.event_log
      class: BatchedSqliteEventLogStorage

``base_dir`` defaults to Dagster's own place for it, ``$DAGSTER_HOME/history/runs``: the same
files as the default storage, so an instance keeps its history when it switches.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlalchemy as db
from dagster._config import Field, StringSource
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.ref import _event_logs_directory
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData

# Batches of one of these only; anything else (planned events, failures to materialise, a mix)
# goes to Dagster's own loop.
BATCHED_TYPES = frozenset({DagsterEventType.ASSET_MATERIALIZATION,
                           DagsterEventType.ASSET_OBSERVATION})

# INSERT … RETURNING came with SQLite 3.35 (2021; Python 3.11 on Debian 12: 3.40): older
# libraries keep Dagster's loop.
RETURNING = sqlite3.sqlite_version_info >= (3, 35)

# Rows per INSERT statement: 7 parameters a row stays under SQLite's oldest limit of 999 host
# parameters per statement (3.32+ allows 32,766, a build may set less).
ROWS_PER_INSERT = 140


def default_base_dir() -> str:
    """Where Dagster's default SQLite storage keeps its event log: ``$DAGSTER_HOME/history/runs``
    (Dagster's own ``_event_logs_directory``, which ``InstanceRef.config_defaults`` uses)."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise DagsterInvariantViolationError(
            "BatchedSqliteEventLogStorage needs base_dir in its config or DAGSTER_HOME set")
    return _event_logs_directory(os.path.abspath(os.path.expanduser(home)))


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log storage, writing a batch of asset materialisations (or
    observations) in two transactions instead of two per event."""

    def __init__(self, base_dir: str | None = None,
                 inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir or default_base_dir(), inst_data=inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,  # type: ignore[override]
                          config_value: dict[str, Any]) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        types = {e.dagster_event_type for e in events}
        if (not RETURNING or len(events) < 2 or len(types) != 1 or not types <= BATCHED_TYPES
                or any(e.run_id != events[0].run_id or e.dagster_event is None
                       or e.dagster_event.asset_key is None for e in events)):
            super().store_event_batch(events)
            return
        rows = [self._event_to_row(e) for e in events]
        with self.run_connection(events[0].run_id) as conn:
            run_ids = self._insert_in(conn, rows)
        try:
            with self.index_transaction() as conn:
                ids = self._insert_in(conn, rows)
                self._store_asset_event_tags(conn, events, ids)
                # storing them one by one, each event overwrites the asset's entry: the last wins
                self._store_asset_event(conn, events[-1], ids[-1])
        except BaseException:
            # Dagster stores the events one by one when a batch fails
            # (DagsterInstance.handle_new_event): the run's database must not keep this batch.
            with self.run_connection(events[0].run_id) as conn:
                conn.execute(SqlEventLogStorageTable.delete().where(
                    SqlEventLogStorageTable.c.id.in_(run_ids)))
            raise

    @staticmethod
    def _insert_in(conn: db.Connection, rows: list[dict[str, Any]]) -> list[int]:
        """Insert ``rows`` (in one transaction, the caller's) and return their ids in order.

        SQLite does not promise RETURNING's order, but inside one write transaction nobody else
        inserts and each row gets the next rowid in the order of VALUES: the ids sorted are the
        rows' ids in order, and consecutive (checked)."""
        table = SqlEventLogStorageTable
        ids: list[int] = []
        for i in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[i:i + ROWS_PER_INSERT]
            result = conn.execute(table.insert().values(chunk).returning(table.c.id))
            ids.extend(sorted(int(r[0]) for r in result.fetchall()))
        if len(ids) != len(rows) or ids != list(range(ids[0], ids[0] + len(ids))):
            raise DagsterInvariantViolationError(
                f"the batch's ids are not {len(rows)} consecutive rowids: {ids[:3]}…")
        return ids
