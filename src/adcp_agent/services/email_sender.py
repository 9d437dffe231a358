"""Sending one email over SMTP with the standard library, in a worker thread so the
event loop never blocks on a slow mail server (smtplib's own timeout bounds it)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from adcp_agent.config import Settings
from adcp_agent.errors import AdcpError


def enabled(settings: Settings) -> bool:
    return bool(settings.smtp_host)


def require_enabled(settings: Settings) -> None:
    if not enabled(settings):
        raise AdcpError(
            "UNSUPPORTED_FEATURE",
            "Email is not configured on this server.",
            suggestion="Set ADCP_AGENT_SMTP_HOST (and port, credentials, from address).",
        )


def _deliver(settings: Settings, message: EmailMessage) -> None:
    assert settings.smtp_host is not None
    timeout = settings.smtp_timeout_seconds
    client: smtplib.SMTP
    if settings.smtp_security == "ssl":
        context = ssl.create_default_context()
        client = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=timeout, context=context
        )
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with client:
        if settings.smtp_security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            client.login(settings.smtp_username, password)
        client.send_message(message)


async def send(settings: Settings, *, to: Sequence[str], subject: str, body: str) -> str:
    """Send a plain-text email; returns its Message-ID. SMTP trouble is a transient
    SERVICE_UNAVAILABLE (the draft stays unsent and can be sent again)."""
    require_enabled(settings)
    message = EmailMessage()
    domain = settings.smtp_from.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(to)
    message["Subject"] = " ".join(subject.split())  # no CR/LF can reach a header
    message.set_content(body)
    try:
        await asyncio.to_thread(_deliver, settings, message)
    except (smtplib.SMTPException, OSError) as exc:
        raise AdcpError(
            "SERVICE_UNAVAILABLE",
            "The mail server did not accept the email; nothing was sent.",
            recovery="transient",
            details={"smtp_error": type(exc).__name__},
        ) from exc
    return str(message["Message-ID"])
