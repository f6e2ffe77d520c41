"""Where a message goes: a generic JSON webhook, Slack, e-mail. None configured, none sent.

Each channel gets the same :class:`Message` and renders it its own way: the webhook a JSON
document with the numbers, Slack blocks (and the chart as an uploaded file when a token is
configured), e-mail a plain-text part and, for the weekly report, an HTML part with the chart
inline (``cid:``). Amazon SES is e-mail through its SMTP interface: the same code path, with
SES's endpoint and an IAM user's SMTP credentials (docs/ALERTS.md).
"""

from __future__ import annotations

import base64
import json
import smtplib
import ssl
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from dagster_slack import SlackResource
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

SLACK_API_URL = "https://slack.com/api/"
CHART_CID = "chart@analytics-platform"
TIMEOUT_SECONDS = 15


@dataclass
class Message:
    """One alert or report, in plain words with its numbers."""

    kind: str  # anomaly | freshness | run_failure | weekly_report
    status: str  # open | resolved | report
    title: str  # the e-mail's subject, Slack's header
    text: str  # the words with the numbers, the link included
    link: str  # where to look (the dashboard, or the failed run)
    numbers: dict[str, Any] = field(default_factory=dict)
    html: str | None = None  # e-mail body; refers to the chart as cid:CHART_CID
    image: bytes | None = None  # PNG
    image_name: str = "chart.png"
    blocks: list[dict[str, Any]] | None = None  # Slack; default: the text in one section

    def payload(self) -> dict[str, Any]:
        """The generic webhook's JSON document."""
        out: dict[str, Any] = {"kind": self.kind, "status": self.status, "title": self.title,
                               "text": self.text, "link": self.link, "numbers": self.numbers}
        if self.image is not None:
            out["image_png_base64"] = base64.b64encode(self.image).decode()
        return out

    def slack_blocks(self) -> list[dict[str, Any]]:
        if self.blocks is not None:
            return self.blocks
        return [{"type": "header", "text": {"type": "plain_text", "text": self.title[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": self.text[:3000]}}]

    def email(self, sender: str, to: list[str]) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = self.title
        msg["From"] = sender
        msg["To"] = ", ".join(to)
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain="analytics-platform")
        msg.set_content(self.text)
        if self.html is not None:
            msg.add_alternative(self.html, subtype="html")
            if self.image is not None:
                html_part = msg.get_payload()[1]
                html_part.add_related(self.image, maintype="image", subtype="png",
                                      cid=f"<{CHART_CID}>", filename=self.image_name)
        return msg


class SlackClientResource(SlackResource):
    """dagster-slack's resource with the API's address as a field (a Slack-compatible server,
    or a test's on 127.0.0.1)."""

    base_url: str = SLACK_API_URL

    def get_client(self) -> WebClient:
        return WebClient(self.token, base_url=self.base_url, timeout=TIMEOUT_SECONDS)


@dataclass(frozen=True)
class Channels:
    """The configured channels (``AlertsResource.channels()``)."""

    webhook_url: str | None = None
    slack_token: str | None = None
    slack_channel: str | None = None
    slack_webhook_url: str | None = None
    slack_api_url: str = SLACK_API_URL
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_security: str = "starttls"
    email_from: str | None = None
    email_to: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.slack_token and not self.slack_channel:
            raise ValueError("ANALYTICS_SLACK_TOKEN needs ANALYTICS_SLACK_CHANNEL")
        if self.smtp_host and not (self.email_from and self.email_to):
            raise ValueError("ANALYTICS_SMTP_HOST needs ANALYTICS_ALERT_EMAIL_FROM and "
                             "ANALYTICS_ALERT_EMAIL_TO")
        if self.smtp_security not in ("starttls", "ssl", "none"):
            raise ValueError(f"ANALYTICS_SMTP_SECURITY is starttls, ssl or none, not "
                             f"{self.smtp_security!r}")

    def names(self) -> list[str]:
        """The channels a message goes to."""
        out = []
        if self.webhook_url:
            out.append("webhook")
        if self.slack_token or self.slack_webhook_url:
            out.append("slack")
        if self.smtp_host:
            out.append("email")
        return out

    def send(self, message: Message, log: Callable[[str], None] = print) -> dict[str, str]:
        """Send ``message`` to every channel; returns the errors by channel (empty: all
        delivered). One channel failing does not keep the message from the others."""
        errors = {}
        for name in self.names():
            try:
                getattr(self, f"_send_{name}")(message)
            except Exception as e:  # a channel down must not hide the message from the rest
                errors[name] = f"{type(e).__name__}: {e}"
                log(f"alert '{message.title}' not delivered to {name}: {errors[name]}")
        return errors

    def _send_webhook(self, message: Message) -> None:
        assert self.webhook_url
        req = urllib.request.Request(
            self.webhook_url, data=json.dumps(message.payload()).encode(), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "analytics-platform"})
        with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as resp:
            resp.read()  # urlopen raises on 4xx/5xx

    def _send_slack(self, message: Message) -> None:
        if self.slack_token:
            assert self.slack_channel
            client = SlackClientResource(token=self.slack_token,
                                         base_url=self.slack_api_url).get_client()
            client.chat_postMessage(channel=self.slack_channel, text=message.text,
                                    blocks=message.slack_blocks(), unfurl_links=False)
            if message.image is not None:
                client.files_upload_v2(channel=self.slack_channel, content=message.image,
                                       filename=message.image_name, title=message.title)
            return
        assert self.slack_webhook_url
        resp = WebhookClient(self.slack_webhook_url, timeout=TIMEOUT_SECONDS).send(
            text=message.text, blocks=message.slack_blocks())
        if resp.status_code != 200:
            raise RuntimeError(f"Slack webhook answered {resp.status_code}: {resp.body}")

    def _send_email(self, message: Message) -> None:
        assert self.smtp_host and self.email_from
        email = message.email(self.email_from, list(self.email_to))
        if self.smtp_security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.smtp_host, self.smtp_port,
                                                  timeout=TIMEOUT_SECONDS,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=TIMEOUT_SECONDS)
        with smtp:
            if self.smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if self.smtp_user:
                smtp.login(self.smtp_user, self.smtp_password or "")
            smtp.send_message(email)
