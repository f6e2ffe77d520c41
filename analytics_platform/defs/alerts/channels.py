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
import re
import smtplib
import ssl
import urllib.error
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
# The port each kind of SMTP security listens on when none is given (RFC 8314: implicit TLS on
# 465; RFC 6409: submission with STARTTLS on 587; plain SMTP relay on 25).
SMTP_PORTS = {"ssl": 465, "starttls": 587, "none": 25}


def slack_escape(value: object) -> str:
    """``value`` as literal text in Slack mrkdwn: Slack's three control characters escaped
    (docs.slack.dev "Formatting text for app surfaces": &, < and > only, nothing else is
    decoded), so ``<!channel>`` or ``<https://evil|label>`` from the data shows as typed instead
    of pinging a channel or hiding a link. slack_sdk (3.48) has no helper for this."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_code(value: object) -> str:
    """``value`` as inline code in Slack mrkdwn: escaped, and with its backticks (which would
    end the code span and let the rest be read as formatting) and line breaks (a span does not
    cross lines) replaced by look-alikes that cannot."""
    text = re.sub(r"\s+", " ", str(value)).replace("`", "\u02cb")
    return f"`{slack_escape(text)}`"


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

    def slack_text(self) -> str:
        """The text as Slack mrkdwn: :attr:`text` is plain words holding values from the data
        (a utm_source, a run's error), each to be shown as typed, so all of it is escaped."""
        return slack_escape(self.text)

    def slack_blocks(self) -> list[dict[str, Any]]:
        """Slack blocks: :attr:`blocks` when given (built with :func:`slack_escape` and
        :func:`slack_code` around every value from the data), else the title and the text."""
        if self.blocks is not None:
            return self.blocks
        return [{"type": "header", "text": {"type": "plain_text", "text": self.title[:150],
                                            "emoji": False}},
                {"type": "section", "text": {"type": "mrkdwn",
                                             "text": self.slack_text()[:3000]}}]

    def to_json(self) -> dict[str, Any]:
        """The message as JSON (the alerts sensor keeps undelivered ones in its cursor);
        :meth:`from_json` reads it back. Not for the report: its chart is not kept."""
        if self.image is not None:
            raise ValueError("a message with an image is not kept as JSON")
        return {k: getattr(self, k) for k in ("kind", "status", "title", "text", "link",
                                               "numbers", "html", "blocks")}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Message:
        return cls(**d)

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
    smtp_port: int | None = None  # None: SMTP_PORTS[smtp_security]
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

    @property
    def port(self) -> int:
        """The SMTP port: the one configured, else the usual one for ``smtp_security``."""
        return self.smtp_port if self.smtp_port is not None else SMTP_PORTS[self.smtp_security]

    def deliver(self, name: str, message: Message) -> str | None:
        """Send ``message`` to the channel ``name``. Raises when it was not delivered; returns
        what went wrong when it was delivered only in part (an e-mail recipient refused), else
        None. A partial delivery is not to be retried: the rest already has the message."""
        out = getattr(self, f"_send_{name}")(message)
        return out or None

    def send(self, message: Message, log: Callable[[str], None] = print) -> Outcome:
        """Send ``message`` to every channel. One channel failing does not keep the message
        from the others; each failure, and each partial delivery, is logged."""
        outcome = Outcome()
        for name in self.names():
            try:
                partial = self.deliver(name, message)
            except Exception as e:  # a channel down must not hide the message from the rest
                outcome.errors[name] = f"{type(e).__name__}: {e}"
                log(f"alert '{message.title}' not delivered to {name}: {outcome.errors[name]}")
                continue
            outcome.delivered.append(name)
            if partial:
                outcome.errors[name] = partial
                log(f"alert '{message.title}' delivered to {name} in part: {partial}")
        return outcome

    def _send_webhook(self, message: Message) -> None:
        assert self.webhook_url
        req = urllib.request.Request(
            self.webhook_url, data=json.dumps(message.payload()).encode(), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "analytics-platform"})
        # Redirects are not followed: urllib would follow a 301/302 with a GET without the body,
        # and the 200 of whatever page answers that GET would count as delivered while the
        # alert is lost. A 3xx is an error naming where the webhook moved.
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=TIMEOUT_SECONDS) as resp:
                resp.read()  # 4xx/5xx raise HTTPError
        except urllib.error.HTTPError as e:
            if 300 <= e.code < 400:
                raise RuntimeError(
                    f"webhook answered {e.code} {e.reason}, redirecting to "
                    f"{e.headers.get('Location')!r}: not followed (the alert would be lost "
                    "in a GET); set the webhook URL to the address it redirects to") from None
            raise

    def _send_slack(self, message: Message) -> None:
        if self.slack_token:
            assert self.slack_channel
            client = SlackClientResource(token=self.slack_token,
                                         base_url=self.slack_api_url).get_client()
            client.chat_postMessage(channel=self.slack_channel, text=message.slack_text(),
                                    blocks=message.slack_blocks(), unfurl_links=False)
            if message.image is not None:
                client.files_upload_v2(channel=self.slack_channel, content=message.image,
                                       filename=message.image_name, title=message.title)
            return
        assert self.slack_webhook_url
        resp = WebhookClient(self.slack_webhook_url, timeout=TIMEOUT_SECONDS).send(
            text=message.slack_text(), blocks=message.slack_blocks())
        if resp.status_code != 200:
            raise RuntimeError(f"Slack webhook answered {resp.status_code}: {resp.body}")

    def _send_email(self, message: Message) -> str | None:
        assert self.smtp_host and self.email_from
        email = message.email(self.email_from, list(self.email_to))
        if self.smtp_security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.smtp_host, self.port,
                                                  timeout=TIMEOUT_SECONDS,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(self.smtp_host, self.port, timeout=TIMEOUT_SECONDS)
        with smtp:
            if self.smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if self.smtp_user:
                smtp.login(self.smtp_user, self.smtp_password or "")
            # send_message raises when every recipient is refused; when only some are, it
            # returns them ({address: (code, reply)}) and the others got the message
            refused = smtp.send_message(email)
        if refused:
            return "recipients refused: " + "; ".join(
                f"{addr} ({code} {reply.decode(errors='replace')})"
                for addr, (code, reply) in sorted(refused.items()))
        return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


@dataclass
class Outcome:
    """What :meth:`Channels.send` did: the channels that took the message (some of them maybe
    in part), and what went wrong, by channel (failures and partial deliveries)."""

    delivered: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
