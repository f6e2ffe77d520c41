"""Every setting of the platform, and the only reader of the environment on the pipeline side.

:data:`SETTINGS` is the table README.md shows under "Configuration" (a test holds the two
identical: :func:`configuration_table` renders it). The pipeline, the CLI and the dashboard read
a value through the functions below, at the time they need it (so a test or a shell that sets a
variable is obeyed without re-importing anything); the Dagster resources bind the variables that
are set with ``dg.EnvVar`` (``defs/resources.py``), so the UI shows where a value came from.

Not read here: the ingest side (``analytics_platform/ingest/``), which runs in the Lambda with
the standard library only and reads its own few variables (the last rows of the table), and
boto3, which reads ``AWS_ENDPOINT_URL`` and the credentials itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    name: str  # or several, ", "-separated, that share a row
    default: str  # as the README shows it
    meaning: str


SETTINGS: tuple[Setting, ...] = (
    Setting("ANALYTICS_DATA_DIR", "`./data`",
            "where the transformed lake (`lake/`) and `warehouse.duckdb` live"),
    Setting("ANALYTICS_RAW_URL", "`$ANALYTICS_DATA_DIR/raw`",
            "the raw lake: a folder, or `s3://bucket/prefix`"),
    Setting("ANALYTICS_LAKE_URL", "unset (local only)",
            "`s3://bucket/prefix`: keep the Parquet lake in S3 too; `lake/` becomes a cache "
            "filled on demand"),
    Setting("AWS_ENDPOINT_URL", "AWS",
            "an S3-compatible endpoint (MinIO, moto…); AWS credentials as usual for boto3"),
    Setting("ANALYTICS_START_DATE", "`2026-01-01`",
            "first hourly/daily partition (the demo sets it to its first simulated day, so the "
            "UI's partition bars cover only days that can have data)"),
    Setting("ANALYTICS_LATE_ARRIVAL_HOURS", "`24`",
            "a day is final once raw hours up to day + 1 day + this are processed"),
    Setting("ANALYTICS_QUARANTINE_WARN_SHARE", "`0.01`",
            "the quarantine check warns above this share of an hour's records"),
    Setting("ANALYTICS_FRESHNESS_HOURS", "`3`",
            "the freshness check warns when the newest event is older"),
    Setting("ANALYTICS_FUNNELS_FILE", "shipped `funnels.yaml`",
            "your funnels (name + steps), no code change"),
    Setting("ANALYTICS_GOALS_FILE", "shipped `goals.yaml`",
            "your goals (name + the event that completes it), no code change"),
    Setting("ANALYTICS_JOURNEY_MIN_VISITORS", "`5`",
            "k of `journeys_daily`: a path of pages seen by fewer visitors in a day is not "
            "published (CONTRACT §5)"),
    Setting("ANALYTICS_REFERRERS_FILE", "none",
            "your rows for the referrer table (`pattern,source,medium`), on top of the shipped "
            "referer-parser database"),
    Setting("ANALYTICS_DUCKDB_MEMORY", "`1GB`",
            "DuckDB memory limit of one pipeline step; beyond it DuckDB spills to "
            "`$ANALYTICS_DATA_DIR/.duckdb_tmp` (keeps a step under ~1.5 GB whatever the "
            "partition size)"),
    Setting("ANALYTICS_SCHEDULE_MINUTE", "`10`", "minute past the hour of the hourly schedule"),
    Setting("ANALYTICS_SENSOR_LOOKBACK_HOURS", "`3`",
            "hour folders the raw-lake sensor lists on each tick"),
    Setting("ANALYTICS_SENSOR_INTERVAL_SECONDS",
            "`10` on a local raw lake or with `ANALYTICS_RAW_QUEUE_URL`, `30` on S3 without",
            "how often the raw-lake and automation sensors tick (on S3 without a queue each tick "
            "costs three LIST requests)"),
    Setting("ANALYTICS_RAW_QUEUE_URL", "none (list hour folders)",
            "an SQS queue that receives the raw lake's S3 `ObjectCreated` notifications (the "
            "stack's, docs/DEPLOY.md): the raw-lake sensor long-polls it for new objects and "
            "lists the recent hour folders only once an hour, to catch a lost notification"),
    Setting("ANALYTICS_HISTORY_INTERVAL_MINUTES", "`60`",
            "the all-history marts are refreshed at most this often (when sessions changed)"),
    Setting("ANALYTICS_RUN_RETENTION_DAYS", "`14`",
            "finished Dagster runs older than this are deleted (but the latest materialisation "
            "of every partition); `0` keeps every run"),
    Setting("ANALYTICS_METRIC_NAMESPACE", "none",
            "a CloudWatch namespace (`analytics/pipeline`): every successful run puts one "
            "`RunSucceeded` data point there (the stack's alarm)"),
    Setting("DAGSTER_HOME", "`$ANALYTICS_DATA_DIR/dagster_home`",
            "Dagster's run history (set by `make` and the CLI); `serve` and `demo` install "
            "`deploy/dagster.yaml` there (docs/DEPLOY.md), `backfill` alone writes a local "
            "`dagster.yaml` when there is none (or brings up to date one it wrote before): "
            "telemetry off, queued runs started within a second, two at a time, the batched "
            "SQLite event log"),
    Setting("DAGSTER_EVENT_BATCH_SIZE", "`500`",
            "Dagster writes the materialisation records of a step over a range of partitions "
            "(a backfill's) in batches of this many: one transaction each in PostgreSQL, two in "
            "the local SQLite event log, instead of one or two per partition (docs/PIPELINE.md); "
            "`0` writes them one by one"),
    Setting("ANALYTICS_ALERTS_FILE", "none",
            "a YAML file of alert channels (the variables below, lower-case without "
            "`ANALYTICS_`); a variable that is set wins over the file (docs/ALERTS.md)"),
    Setting("ANALYTICS_ALERT_WEBHOOK_URL", "none",
            "alerts and the weekly report as a JSON `POST` to this URL"),
    Setting("ANALYTICS_SLACK_TOKEN, ANALYTICS_SLACK_CHANNEL", "none",
            "Slack through its Web API (dagster-slack): a bot token (`chat:write`; `files:write` "
            "for the report's chart) and the channel's id"),
    Setting("ANALYTICS_SLACK_WEBHOOK_URL", "none",
            "Slack through an incoming webhook instead of a token (no chart)"),
    Setting("ANALYTICS_SMTP_HOST, ANALYTICS_SMTP_PORT",
            "none, `465` with ssl, `587` with starttls, `25` with none",
            "e-mail through this SMTP server (Amazon SES: its SMTP endpoint, "
            "`email-smtp.<region>.amazonaws.com`)"),
    Setting("ANALYTICS_SMTP_USER, ANALYTICS_SMTP_PASSWORD", "none",
            "the SMTP login (SES: an IAM user's SMTP credentials)"),
    Setting("ANALYTICS_SMTP_SECURITY", "`starttls`", "`starttls`, `ssl` or `none`"),
    Setting("ANALYTICS_ALERT_EMAIL_FROM, ANALYTICS_ALERT_EMAIL_TO", "none",
            "sender and recipients (comma-separated) of the e-mails"),
    Setting("ANALYTICS_DASHBOARD_URL", "`http://127.0.0.1:8501`",
            "the dashboard's address, linked from every alert and report"),
    Setting("ANALYTICS_DAGSTER_URL", "`http://127.0.0.1:3000`",
            "the Dagster UI's address, linked from a failed run's alert"),
    Setting("ANALYTICS_WEEKLY_REPORT_CRON", "`0 8 * * 1`",
            "when the weekly report is sent (cron, UTC; Mondays 08:00)"),
    Setting("ANALYTICS_SERVE_LOGS", "`files`",
            "where `serve` sends its children's output: `files` (`$ANALYTICS_DATA_DIR/logs/"
            "<role>.log`, the terminal shows a short status) or `stdout` (a container's log; "
            "the image's default)"),
    Setting("ANALYTICS_RUN_LAUNCHER", "`local`",
            "`ecs`: `serve` installs `deploy/dagster-ecs.yaml`, every Dagster run an ECS "
            "Fargate task (docs/DEPLOY.md)"),
    Setting("ANALYTICS_ECS_CLUSTER, ANALYTICS_ECS_TASK_DEFINITION, ANALYTICS_ECS_SUBNETS, "
            "ANALYTICS_ECS_SECURITY_GROUPS, ANALYTICS_ECS_CAPACITY_PROVIDER", "—",
            "with `ecs`: the cluster, the run task definition, the runs' subnets and security "
            "groups (comma-separated), `FARGATE` (default) or `FARGATE_SPOT`"),
    Setting("ANALYTICS_ALLOWED_ORIGINS", "`*`",
            "origins allowed to send events (comma-separated), for the Lambda and the collector"),
    Setting("ANALYTICS_SINK", "`firehose`",
            "the Lambda's sink: `firehose`, `kinesis` or `s3`"),
    Setting("ANALYTICS_FIREHOSE_STREAM, ANALYTICS_KINESIS_STREAM", "—",
            "the sink's stream (the `s3` sink writes to `ANALYTICS_RAW_URL`)"),
    Setting("ANALYTICS_SALT_URL", "`$ANALYTICS_DATA_DIR/salts` (collector); required by the Lambda",
            "where the daily salts of `visitor_hash` live, a folder or `s3://bucket/prefix` "
            "(the Lambda's: its own bucket); each is destroyed 48 hours after its day began, at "
            "the next purge (a minute or two; docs/PRIVACY.md)"),
    Setting("ANALYTICS_CLIENT_IP_HEADER", "none (the connection's peer)",
            "the header that carries the client's address behind a proxy or CDN "
            "(`x-forwarded-for`, `cloudfront-viewer-address`…), used for `visitor_hash` only, "
            "never stored"),
    Setting("ANALYTICS_TRUSTED_PROXIES", "none",
            "CIDRs (comma-separated) of the proxies allowed to set that header; required with it"),
    Setting("ANALYTICS_BEHIND_CLOUDFRONT", "`false`",
            "`true`: the endpoint is reached through CloudFront only, and `country` comes from "
            "its `CloudFront-Viewer-Country` header; otherwise that header is ignored and the "
            "country comes from the browser's time zone (docs/INGEST.md)"),
)


def configuration_table() -> str:
    """:data:`SETTINGS` as the markdown table of README.md's "Configuration"."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        names = ", ".join(f"`{n}`" for n in s.name.split(", "))
        rows.append(f"| {names} | {s.default} | {s.meaning} |")
    return "\n".join(rows)


def _env(name: str) -> str | None:
    """The variable's value, None when unset or empty."""
    return os.environ.get(name) or None


def is_set(name: str) -> bool:
    return _env(name) is not None


def data_dir() -> Path:
    """``$ANALYTICS_DATA_DIR`` (default ``./data``), as an absolute path."""
    return Path(_env("ANALYTICS_DATA_DIR") or "data").expanduser().resolve()


def raw_url() -> str:
    """``$ANALYTICS_RAW_URL``, default ``$ANALYTICS_DATA_DIR/raw``."""
    return _env("ANALYTICS_RAW_URL") or str(data_dir() / "raw")


def lake_url() -> str | None:
    """``$ANALYTICS_LAKE_URL`` (``s3://bucket/prefix``) or None: where the Parquet lake is kept
    durably, besides its local cache under ``$ANALYTICS_DATA_DIR/lake``."""
    return _env("ANALYTICS_LAKE_URL")


def start_date() -> str:
    """``$ANALYTICS_START_DATE`` (default 2026-01-01): the first hourly and daily partition,
    ``YYYY-MM-DD``."""
    value = _env("ANALYTICS_START_DATE") or "2026-01-01"
    try:
        date.fromisoformat(value)
    except ValueError as e:
        raise ValueError(f"ANALYTICS_START_DATE must be a date like 2026-02-01, not {value!r}"
                         ) from e
    return value


def late_arrival_hours() -> int:
    """``$ANALYTICS_LATE_ARRIVAL_HOURS`` (default 24): a day's sessions are final once raw hours
    up to day + 1 day + this many hours are processed (CONTRACT §4)."""
    text = _env("ANALYTICS_LATE_ARRIVAL_HOURS") or "24"
    if not text.strip().isdigit():
        raise ValueError(f"ANALYTICS_LATE_ARRIVAL_HOURS must be a whole number of hours, 0 or "
                         f"more, not {text!r}")
    return int(text)


def quarantine_warn_share() -> float:
    """``$ANALYTICS_QUARANTINE_WARN_SHARE`` (default 0.01)."""
    return float(_env("ANALYTICS_QUARANTINE_WARN_SHARE") or 0.01)


def freshness_hours() -> float:
    """``$ANALYTICS_FRESHNESS_HOURS`` (default 3)."""
    return float(_env("ANALYTICS_FRESHNESS_HOURS") or 3.0)


def funnels_file() -> str | None:
    """``$ANALYTICS_FUNNELS_FILE``, or None for the shipped ``funnels.yaml``."""
    return _env("ANALYTICS_FUNNELS_FILE")


def goals_file() -> str | None:
    """``$ANALYTICS_GOALS_FILE``, or None for the shipped ``goals.yaml``."""
    return _env("ANALYTICS_GOALS_FILE")


def journey_min_visitors() -> int:
    """``$ANALYTICS_JOURNEY_MIN_VISITORS`` (default 5): the k of ``journeys_daily`` (CONTRACT
    §5): a day's path seen by fewer distinct visitors is left out of the table."""
    value = int(_env("ANALYTICS_JOURNEY_MIN_VISITORS") or 5)
    if value < 1:
        raise ValueError(f"ANALYTICS_JOURNEY_MIN_VISITORS must be 1 or more, not {value}")
    return value


def referrers_file() -> str | None:
    """``$ANALYTICS_REFERRERS_FILE``, or None: extra referrer rows."""
    return _env("ANALYTICS_REFERRERS_FILE")


def duckdb_memory_limit() -> str:
    """``$ANALYTICS_DUCKDB_MEMORY`` (default ``1GB``): what one pipeline step's DuckDB may hold
    in memory before it spills to ``$ANALYTICS_DATA_DIR/.duckdb_tmp``. With the step's own
    buffers this keeps a step under about 1.5 GB whatever the size of the partition."""
    value = _env("ANALYTICS_DUCKDB_MEMORY") or "1GB"
    # DuckDB refused a bad one only inside the first step, in a run's stack traces
    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*([KMGT]i?B|[KMGT]|bytes)\s*", value, re.I):
        raise ValueError(f"ANALYTICS_DUCKDB_MEMORY must be a size such as 1GB or 512MB, "
                         f"not {value!r}")
    return value


def schedule_minute() -> int:
    """``$ANALYTICS_SCHEDULE_MINUTE`` (default 10): Firehose flushes a buffer at most its
    buffering interval (300 s by default) after its first record, so by :10 the previous hour's
    folder is complete except for rare retries (which the sensor picks up)."""
    return int(_env("ANALYTICS_SCHEDULE_MINUTE") or 10)


SENSOR_INTERVAL_LOCAL = 10
SENSOR_INTERVAL_S3 = 30
SENSOR_LOOKBACK_HOURS = 3
# Objects also land in older hour folders (the collector's spool after an outage, Firehose's
# retries for up to a day, an erased object): the raw-lake sensor lists the last
# SENSOR_SWEEP_HOURS of hour folders every SENSOR_SWEEP_SECONDS as well, hourly on a listing
# alone, daily with raw/'s notifications (which name the objects of any hour as they land, but
# not deletions). One LIST an hour folder (defs/automation/sensors.py; cost.py counts them).
SENSOR_SWEEP_HOURS = 7 * 24
SENSOR_SWEEP_SECONDS = 3600
SENSOR_SWEEP_SECONDS_QUEUE = 24 * 3600


def sensor_lookback_hours() -> int:
    """``$ANALYTICS_SENSOR_LOOKBACK_HOURS`` (default 3): hour folders the raw-lake sensor lists a
    tick (Firehose names an object after its oldest record, so an hour's folder stops changing
    a buffer interval after the hour ends; three hours leave room for retries)."""
    return int(_env("ANALYTICS_SENSOR_LOOKBACK_HOURS") or SENSOR_LOOKBACK_HOURS)


def sensor_interval_seconds() -> int:
    """``$ANALYTICS_SENSOR_INTERVAL_SECONDS``: how often the raw-lake and automation sensors
    tick. By default 10 s on a local raw lake (listing a folder is free, and each tick saved is
    seconds off the time from a visit to the warehouse) and 30 s on S3, where every tick costs
    LIST requests (three a tick: about $1.30 a month at 30 s, three times that at 10 s); 10 s
    on S3 too with a notifications queue (``$ANALYTICS_RAW_QUEUE_URL``), where a tick is one
    SQS request ($0.10 a month at 10 s)."""
    value = _env("ANALYTICS_SENSOR_INTERVAL_SECONDS")
    if value:
        return int(value)
    if raw_url().startswith("s3://") and raw_queue_url() is None:
        return SENSOR_INTERVAL_S3
    return SENSOR_INTERVAL_LOCAL


def raw_queue_url() -> str | None:
    """``$ANALYTICS_RAW_QUEUE_URL``: the SQS queue of the raw lake's S3 ``ObjectCreated``
    notifications (infra/modules/storage, notifications.tf), or None: the raw-lake sensor then
    lists the recent hour folders every tick."""
    return _env("ANALYTICS_RAW_QUEUE_URL")


HISTORY_INTERVAL_MINUTES = 60


def history_interval_minutes() -> float:
    """``$ANALYTICS_HISTORY_INTERVAL_MINUTES`` (default 60): the all-history marts (cohorts by
    week, attribution over every session, experiments) read every session kept; they are
    refreshed at most this often, when some day's sessions changed since their last run."""
    return float(_env("ANALYTICS_HISTORY_INTERVAL_MINUTES") or HISTORY_INTERVAL_MINUTES)


def run_retention_days() -> float:
    """``$ANALYTICS_RUN_RETENTION_DAYS`` (default 14; 0 keeps every run): Dagster keeps every
    run's events, about 190 KB a run in SQLite."""
    return float(_env("ANALYTICS_RUN_RETENTION_DAYS") or 14)


def metric_namespace() -> str | None:
    """``$ANALYTICS_METRIC_NAMESPACE``: where a successful run puts its CloudWatch data point,
    or None (no metric)."""
    return _env("ANALYTICS_METRIC_NAMESPACE")


def dagster_home() -> Path:
    """``$DAGSTER_HOME``, default ``$ANALYTICS_DATA_DIR/dagster_home``."""
    return Path(_env("DAGSTER_HOME") or data_dir() / "dagster_home")


# The event log storage of a Dagster instance kept in SQLite (the CLI's and `serve`'s without
# PostgreSQL): Dagster's own, at its own place under $DAGSTER_HOME, but writing a batch of
# materialisation records in two transactions instead of two per record (event_log.py).
SQLITE_EVENT_LOG_STORAGE = {"module": "analytics_platform.event_log",
                            "class": "BatchedSqliteEventLogStorage"}

# With batches of 500, the 30-day backfill's `events` step (772 hours, 2 assets) writes its 1,544
# records in 4 batches: 20.4 s of one-by-one SQLite transactions before (issue 21). A batch is
# held in memory only while one output's records are made.
EVENT_BATCH_SIZE = 500


def apply_dagster_defaults() -> None:
    """Set ``$DAGSTER_EVENT_BATCH_SIZE`` (default 500) where it is unset or empty: Dagster reads
    it in the process that runs the steps, each time it stores an event, and batches only when
    it is above 0 (``DagsterInstance.handle_new_event``). Called where the code location loads
    (definitions.py), so the CLI's in-process runs, the code server and every run it launches
    get it; a value the user set wins."""
    if _env("DAGSTER_EVENT_BATCH_SIZE") is None:
        os.environ["DAGSTER_EVENT_BATCH_SIZE"] = str(EVENT_BATCH_SIZE)


def alerts_file() -> str | None:
    """``$ANALYTICS_ALERTS_FILE``, or None: a YAML file of alert channels (docs/ALERTS.md)."""
    return _env("ANALYTICS_ALERTS_FILE")


# The alert channels' variables, by the field of the `alerts` resource each one sets
# (defs/alerts/resources.py binds those that are set).
ALERT_VARIABLES = {
    "config_file": "ANALYTICS_ALERTS_FILE",
    "webhook_url": "ANALYTICS_ALERT_WEBHOOK_URL",
    "slack_token": "ANALYTICS_SLACK_TOKEN",
    "slack_channel": "ANALYTICS_SLACK_CHANNEL",
    "slack_webhook_url": "ANALYTICS_SLACK_WEBHOOK_URL",
    "smtp_host": "ANALYTICS_SMTP_HOST",
    "smtp_port": "ANALYTICS_SMTP_PORT",
    "smtp_user": "ANALYTICS_SMTP_USER",
    "smtp_password": "ANALYTICS_SMTP_PASSWORD",
    "smtp_security": "ANALYTICS_SMTP_SECURITY",
    "email_from": "ANALYTICS_ALERT_EMAIL_FROM",
    "email_to": "ANALYTICS_ALERT_EMAIL_TO",
    "dashboard_url": "ANALYTICS_DASHBOARD_URL",
    "dagster_url": "ANALYTICS_DAGSTER_URL",
}


def alert_channel_settings() -> dict[str, str]:
    """The alert variables that are set, by field (``ANALYTICS_SLACK_TOKEN`` is
    ``slack_token``): where alerts and the weekly report go. None set, none are sent."""
    return {f: v for f, name in ALERT_VARIABLES.items() if (v := _env(name)) is not None}


def dashboard_url() -> str:
    """``$ANALYTICS_DASHBOARD_URL`` (default ``http://127.0.0.1:8501``)."""
    return _env("ANALYTICS_DASHBOARD_URL") or "http://127.0.0.1:8501"


def dagster_url() -> str:
    """``$ANALYTICS_DAGSTER_URL`` (default ``http://127.0.0.1:3000``)."""
    return _env("ANALYTICS_DAGSTER_URL") or "http://127.0.0.1:3000"


def weekly_report_cron() -> str:
    """``$ANALYTICS_WEEKLY_REPORT_CRON`` (default ``0 8 * * 1``: Mondays 08:00 UTC)."""
    return _env("ANALYTICS_WEEKLY_REPORT_CRON") or "0 8 * * 1"


def serve_logs() -> str:
    """``$ANALYTICS_SERVE_LOGS``: ``files`` (default) or ``stdout``, where ``serve`` puts the
    output of the processes it supervises."""
    value = (_env("ANALYTICS_SERVE_LOGS") or "files").lower()
    if value not in ("files", "stdout"):
        raise ValueError(f"ANALYTICS_SERVE_LOGS must be files or stdout, not {value!r}")
    return value


def run_launcher() -> str:
    """``$ANALYTICS_RUN_LAUNCHER``: ``local`` (default: runs are processes of the code server)
    or ``ecs`` (every run an ECS task, deploy/dagster-ecs.yaml)."""
    value = (_env("ANALYTICS_RUN_LAUNCHER") or "local").lower()
    if value not in ("local", "ecs"):
        raise ValueError(f"ANALYTICS_RUN_LAUNCHER must be local or ecs, not {value!r}")
    return value


def ecs_network() -> dict[str, list[str]] | None:
    """``$ANALYTICS_ECS_SUBNETS`` and ``$ANALYTICS_ECS_SECURITY_GROUPS`` (comma-separated), or
    None when no subnet is set."""
    def split(name: str) -> list[str]:
        return [v.strip() for v in (_env(name) or "").split(",") if v.strip()]

    subnets = split("ANALYTICS_ECS_SUBNETS")
    if not subnets:
        return None
    return {"subnets": subnets, "security_groups": split("ANALYTICS_ECS_SECURITY_GROUPS")}


def ecs_capacity_provider() -> str | None:
    """``$ANALYTICS_ECS_CAPACITY_PROVIDER``: ``FARGATE_SPOT`` to run tasks on Spot capacity."""
    return _env("ANALYTICS_ECS_CAPACITY_PROVIDER")
