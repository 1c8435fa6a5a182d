"""E-mail channel over SMTP (standard library ``smtplib``, run in a worker thread)."""

from __future__ import annotations

import asyncio
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from engine.notify._base import DeliveryError
from engine.notify._render import Rendered, to_plain
from engine.notify.config import EmailConfig

__all__ = ["EmailChannel", "build_email"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def build_email(config: EmailConfig, message: Rendered) -> EmailMessage:
    email = EmailMessage()
    # Bot names and reasons end up in the subject: control characters there could forge headers.
    subject = _CONTROL.sub(" ", f"{config.subject_prefix} {message.title}".strip())
    email["Subject"] = subject
    email["From"] = config.from_
    email["To"] = ", ".join(config.to)
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = make_msgid(idstring=message.id)
    email["X-Engine-Event"] = message.kind
    email.set_content(to_plain(message))
    return email


class EmailChannel:
    def __init__(self, config: EmailConfig, *, username: str | None, password: str | None) -> None:
        self.name = "email"
        self.events = frozenset(config.events)
        self.rate_limit = config.rate_limit
        self.retry = config.retry
        self._config = config
        self._username = username
        self._password = password

    async def send(self, message: Rendered) -> None:
        await asyncio.to_thread(self._send_sync, build_email(self._config, message))

    def _send_sync(self, email: EmailMessage) -> None:
        cfg = self._config
        try:
            context = ssl.create_default_context(cafile=cfg.ca_file)
            if cfg.tls == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout_seconds, context=context
                )
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
            with smtp:
                smtp.ehlo()
                if cfg.tls == "starttls":
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if self._username is not None and self._password is not None:
                    smtp.login(self._username, self._password)
                smtp.send_message(email)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP server refused the login ({exc.smtp_code})", retryable=False) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"SMTP server does not support it: {exc}", retryable=False) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            raise DeliveryError(f"SMTP server refused the recipients ({codes})", retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            text = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            raise DeliveryError(
                f"SMTP server answered {exc.smtp_code}: {text}", retryable=400 <= exc.smtp_code < 500
            ) from None
        except ssl.SSLError as exc:
            raise DeliveryError(
                f"TLS with the SMTP server failed: {exc.reason or exc}", retryable=False
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"cannot reach the SMTP server ({type(exc).__name__}: {exc})", retryable=True
            ) from None
