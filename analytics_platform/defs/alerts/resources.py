"""The ``alerts`` resource: the channels, from ``ANALYTICS_*`` variables or a YAML file.

Variables that are set are bound with ``dg.EnvVar`` (the UI shows the variable, never a token
or password); ``ANALYTICS_ALERTS_FILE`` names a YAML file with the same keys (``webhook_url``,
``slack_token``…), for whoever prefers one file; a variable that is set wins over the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from pydantic import Field

from analytics_platform import settings
from analytics_platform.defs.alerts.channels import SLACK_API_URL, Channels

# The fields a channel is configured with: the resource's, the YAML file's keys, and
# settings.alert_channel_settings()'s (ANALYTICS_SLACK_TOKEN is slack_token).
CHANNEL_FIELDS = ("webhook_url", "slack_token", "slack_channel", "slack_webhook_url",
                  "slack_api_url", "smtp_host", "smtp_port", "smtp_user", "smtp_password",
                  "smtp_security", "email_from", "email_to")


class AlertsResource(dg.ConfigurableResource):
    """Where alerts and the weekly report go (docs/ALERTS.md). Nothing configured: nothing
    is sent, and the alerts sensor and the report's schedule say so."""

    config_file: str | None = Field(
        default_factory=settings.alerts_file,
        description="YAML file of channels (keys: the fields below). Default: "
        "$ANALYTICS_ALERTS_FILE; fields that are set win over it.")
    webhook_url: str | None = Field(default=None, description="JSON POST of every message.")
    slack_token: str | None = Field(default=None, description="Slack bot token (chat:write, "
                                    "files:write for the report's chart).")
    slack_channel: str | None = Field(default=None, description="Slack channel id.")
    slack_webhook_url: str | None = Field(default=None, description="Slack incoming webhook "
                                          "(instead of a token; no chart).")
    slack_api_url: str | None = Field(default=None, description=f"Default {SLACK_API_URL}.")
    smtp_host: str | None = Field(default=None, description="SMTP server (SES: "
                                  "email-smtp.<region>.amazonaws.com).")
    smtp_port: int | None = Field(default=None, description="Default: 465 with ssl, 587 with "
                                  "starttls, 25 with none.")
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_security: str | None = Field(default=None, description="starttls (default), ssl or "
                                      "none.")
    email_from: str | None = None
    email_to: str | None = Field(default=None, description="Comma-separated recipients.")
    dashboard_url: str = Field(default_factory=settings.dashboard_url,
                               description="Linked from every message.")
    dagster_url: str = Field(default_factory=settings.dagster_url,
                             description="Linked from a failed run's message.")

    def values(self) -> dict[str, Any]:
        """The channel settings: the file's, then the fields that are set."""
        out: dict[str, Any] = {}
        if self.config_file:
            loaded = yaml.safe_load(Path(self.config_file).read_text()) or {}
            unknown = set(loaded) - set(CHANNEL_FIELDS)
            if unknown:
                raise ValueError(f"{self.config_file}: unknown keys {sorted(unknown)}; "
                                 f"known: {', '.join(CHANNEL_FIELDS)}")
            out |= {k: v for k, v in loaded.items() if v not in (None, "")}
        out |= {k: getattr(self, k) for k in CHANNEL_FIELDS if getattr(self, k) is not None}
        return out

    def channels(self) -> Channels:
        v = self.values()
        to = v.pop("email_to", None)
        if to is not None:
            v["email_to"] = tuple(a.strip() for a in (to if isinstance(to, list)
                                                      else str(to).split(",")) if a.strip())
        if "smtp_port" in v:
            v["smtp_port"] = int(v["smtp_port"])
        return Channels(**v)


def configured_at_load() -> bool:
    """Whether any channel is configured when the code location loads: the alerts sensor and
    the report's schedule then start RUNNING; otherwise STOPPED (switch on in the UI after
    configuring; a tick with no channel skips and says why)."""
    return bool(set(settings.alert_channel_settings()) - {"dashboard_url", "dagster_url"})


@dg.definitions
def alert_resources() -> dg.Definitions:
    # Each variable that is set, bound by name (the UI shows where a value came from, never a
    # token or a password).
    bound: dict[str, Any] = {
        field: dg.EnvVar.int(name) if field == "smtp_port" else dg.EnvVar(name)
        for field, name in settings.ALERT_VARIABLES.items() if settings.is_set(name)}
    return dg.Definitions(resources={"alerts": AlertsResource(**bound)})
