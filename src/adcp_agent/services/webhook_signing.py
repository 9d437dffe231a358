"""Signing webhook bodies, and the check receivers run to trust them.

The signature is HMAC-SHA256 over ``f"{timestamp}.".encode() + body`` with the endpoint's
secret. Publisher webhooks carry ``X-ADCP-Signature: t=<unix seconds>,v1=<hex digest>``
(Stripe's layout: the timestamp is inside the signed header, so it cannot be swapped
without breaking the digest). AdCP push notifications registered with the legacy
``HMAC-SHA256`` scheme carry what the AdCP SDKs verify: ``X-ADCP-Signature:
sha256=<hex digest>`` plus ``X-ADCP-Timestamp``. Both sign the same message, so one
``verify_signature`` checks either.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "X-ADCP-Signature"
TIMESTAMP_HEADER = "X-ADCP-Timestamp"
EVENT_ID_HEADER = "X-ADCP-Event-Id"
EVENT_TYPE_HEADER = "X-ADCP-Event-Type"
ATTEMPT_HEADER = "X-ADCP-Delivery-Attempt"
DEFAULT_TOLERANCE = 300.0  # seconds a signature stays acceptable (replay window)


def digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Headers for a publisher webhook (``t=...,v1=...``)."""
    return {
        SIGNATURE_HEADER: f"t={timestamp},v1={digest(secret, timestamp, body)}",
        TIMESTAMP_HEADER: str(timestamp),
    }


def adcp_hmac_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Headers for an AdCP push notification registered with ``HMAC-SHA256``."""
    return {
        SIGNATURE_HEADER: f"sha256={digest(secret, timestamp, body)}",
        TIMESTAMP_HEADER: str(timestamp),
    }


def _parse(headers: Mapping[str, str]) -> tuple[int, list[str]] | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    raw = lowered.get(SIGNATURE_HEADER.lower(), "").strip()
    if not raw:
        return None
    timestamp: str | None = lowered.get(TIMESTAMP_HEADER.lower())
    candidates: list[str] = []
    if raw.startswith("sha256="):
        candidates.append(raw[len("sha256=") :])
    else:
        # t=...,v1=...[,v1=...]: several v1 values appear while a secret is rotated.
        for part in raw.split(","):
            key, _, value = part.strip().partition("=")
            if key == "t":
                timestamp = value
            elif key == "v1":
                candidates.append(value)
    if timestamp is None or not candidates:
        return None
    try:
        return int(timestamp), candidates
    except ValueError:
        return None


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> bool:
    """True when ``body`` (the raw bytes as received, before any JSON parsing) was signed
    with ``secret`` within ``tolerance`` seconds of ``now``. Receivers should also
    dedupe on ``X-ADCP-Event-Id``: delivery is at-least-once, so a retry of an event
    they already processed is normal."""
    parsed = _parse(headers)
    if parsed is None:
        return False
    timestamp, candidates = parsed
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = digest(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)
