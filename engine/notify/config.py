"""The ``notifications:`` section of the engine configuration, as pydantic models.

    notifications:
      telegram:
        token: env:TG_TOKEN            # secrets are env: references, never literal values
        chat_id: "-1001234567890"
        events: [trade_opened, trade_closed, risk_halt, reload, error, daily_summary, momentum_alert]
      webhooks:
        - name: ops
          url: env:OPS_WEBHOOK_URL     # or a literal https:// URL without credentials
          secret: env:OPS_WEBHOOK_SECRET
          events: [risk_halt, error]
      email:
        host: smtp.example.com
        username: env:SMTP_USER
        password: env:SMTP_PASSWORD
        from: bots@example.com
        to: [me@example.com]
        events: [risk_halt, daily_summary]

Only pydantic is imported here, so the configuration layer can embed these models cheaply.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "EVENT_KINDS",
    "EmailConfig",
    "EventKind",
    "NotificationsConfig",
    "RateLimit",
    "RetryPolicy",
    "TelegramConfig",
    "WebhookConfig",
    "is_env_ref",
]

EventKind = Literal[
    "trade_opened", "trade_closed", "risk_halt", "reload", "error", "daily_summary", "momentum_alert", "model"
]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)

_ENV_REF = re.compile(r"env:[A-Za-z_][A-Za-z0-9_]*")
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def is_env_ref(value: str) -> bool:
    return _ENV_REF.fullmatch(value) is not None


def _env_only(value: str) -> str:
    if not is_env_ref(value):
        # Never echo the value: it is probably the secret itself.
        raise ValueError("must be an env: reference such as env:TG_TOKEN (secrets are not written in YAML)")
    return value


def _url_or_env(value: str) -> str:
    if is_env_ref(value):
        return value
    if not re.match(r"https?://[^/\s]+", value):
        raise ValueError("must be an http:// or https:// URL, or an env: reference")
    if re.match(r"https?://[^/@\s]*:[^/@\s]*@", value):
        raise ValueError("must not contain credentials: put the whole URL in the environment (env:NAME)")
    return value


SecretRef = Annotated[str, AfterValidator(_env_only)]
UrlOrEnv = Annotated[str, AfterValidator(_url_or_env)]


class _Model(BaseModel):
    # A value refused here may be a pasted secret: keep inputs out of error messages.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class RateLimit(_Model):
    """At most ``messages`` per ``per_seconds`` (a token bucket, so short bursts up to ``messages`` pass).
    Events over the limit are counted and reported in one "N notifications suppressed" message."""

    messages: int = Field(20, ge=1, description="Messages allowed per window (also the largest burst).")
    per_seconds: float = Field(60.0, gt=0, description="Length of the window in seconds.")


class RetryPolicy(_Model):
    """A failed delivery is retried ``attempts`` times, waiting ``backoff_seconds`` * 2^n (capped), or
    what the server asked for (Telegram ``retry_after``, HTTP ``Retry-After``)."""

    attempts: int = Field(3, ge=0, le=10, description="Retries after a failed delivery (0: none).")
    backoff_seconds: float = Field(1.0, gt=0, description="First wait before a retry, doubled each time.")
    max_backoff_seconds: float = Field(60.0, gt=0, description="Longest wait between two attempts.")


class _Channel(_Model):
    enabled: bool = Field(True, description="false keeps the channel configured but sends nothing.")
    events: tuple[EventKind, ...] = Field(
        EVENT_KINDS,
        description="Which events this channel sends: trade_opened, trade_closed, risk_halt, reload, error, "
        "daily_summary, momentum_alert, model (default: all).",
    )
    rate_limit: RateLimit = Field(RateLimit(), description="At most this many messages per time window.")
    retry: RetryPolicy = Field(RetryPolicy(), description="How failed deliveries are retried.")
    timeout_seconds: float = Field(10.0, gt=0, description="Time limit of one delivery attempt.")


class TelegramConfig(_Channel):
    """Messages to a Telegram chat through a bot token."""

    token: SecretRef = Field(description="The Telegram bot token: env:VARIABLE_NAME.")
    chat_id: str = Field(description="The chat (user, group or channel id) the messages go to.")
    # The Bot API base; change it for a local Bot API server (or a test double).
    base_url: str = Field("https://api.telegram.org", description="Bot API address (a local Bot API server).")
    parse_mode: Literal["HTML", "MarkdownV2", "plain"] = Field("HTML", description="Message formatting.")
    silent: bool = Field(False, description="Send without a notification sound.")

    @field_validator("chat_id", mode="before")
    @classmethod
    def _chat_id_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not re.match(r"https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


class WebhookConfig(_Channel):
    """JSON POSTs to an HTTP endpoint, optionally signed with HMAC-SHA256."""

    name: str | None = Field(None, description="Name shown in logs (default: its position in the list).")
    url: UrlOrEnv = Field(description="http(s) URL without credentials, or env:VARIABLE_NAME holding it.")
    # Signs each body: header X-Engine-Signature: sha256=HMAC(secret, "<timestamp>.<body>").
    secret: SecretRef | None = Field(
        None, description="Signing secret (env:VARIABLE_NAME): X-Engine-Signature = HMAC of timestamp.body."
    )
    # Extra headers; values may be env: references (those are treated as secrets).
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra request headers; values may be env: references."
    )
    rate_limit: RateLimit = Field(
        RateLimit(messages=60, per_seconds=60.0), description="At most this many messages per time window."
    )


class EmailConfig(_Channel):
    """Mail through an SMTP server."""

    model_config = ConfigDict(populate_by_name=True)

    host: str = Field(description="SMTP server host name.")
    port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    tls: Literal["starttls", "ssl", "none"] = Field("starttls", description="Transport security.")
    username: str | None = Field(None, description="SMTP user name (or env:VARIABLE_NAME).")
    password: SecretRef | None = Field(None, description="SMTP password: env:VARIABLE_NAME.")
    from_: str = Field(alias="from", description="Sender address.")
    to: tuple[str, ...] = Field(min_length=1, description="Recipient addresses.")
    subject_prefix: str = Field("[engine]", description="Put before every subject.")
    # A CA bundle for servers with a private certificate authority.
    ca_file: str | None = Field(
        None, description="CA bundle for a server with a private certificate authority."
    )
    rate_limit: RateLimit = Field(
        RateLimit(messages=12, per_seconds=3600.0), description="At most this many messages per time window."
    )

    @model_validator(mode="after")
    def _credentials_need_tls(self) -> EmailConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.password is not None and self.tls == "none" and self.host not in _LOOPBACK:
            raise ValueError("refusing to send SMTP credentials without TLS (use tls: starttls or ssl)")
        return self


class NotificationsConfig(_Model):
    """Where notifications go: Telegram, webhooks and e-mail, each with its events and rate limit."""

    telegram: TelegramConfig | None = Field(None, description="A Telegram chat.")
    webhooks: tuple[WebhookConfig, ...] = Field((), description="HTTP endpoints receiving JSON.")
    email: EmailConfig | None = Field(None, description="E-mail through SMTP.")
    # UTC time of day at which the daily summary is sent.
    daily_summary_at: time = Field(
        time(0, 0), description="UTC time of day of the daily summary (a wall-clock notifier's schedule)."
    )
    # Per channel; past it, events are counted as suppressed instead of queued.
    queue_size: int = Field(
        1000, ge=1, description="Messages queued per channel; more are counted as suppressed."
    )
