"""The installation's tenant-management API key: issued once, rotated, verified.

Like buyer tokens, the key is a random 256-bit secret stored only as SHA-256 and
compared in constant time. There is exactly one key per installation; the first
``init`` claims it and every later ``init`` is a conflict, so the key is shown exactly
once and can never be fetched again.
"""

from __future__ import annotations

import hmac
import secrets

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from adcp_agent.db.engine import Database
from adcp_agent.db.models_admin import ADMIN_KEY_ID, AdminApiKey
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import audit
from adcp_agent.services.identity import hash_token

KEY_PREFIX = "adcp_admin_"
HEADER = "X-Tenant-Management-API-Key"


def _new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _hint(key: str) -> str:
    return key[: len(KEY_PREFIX) + 4]


async def init_api_key(db: Database) -> str:
    """Create the key and return it; it is never retrievable afterwards."""
    key = _new_key()
    try:
        async with db.transaction() as session:
            if await session.get(AdminApiKey, ADMIN_KEY_ID) is not None:
                raise _already_initialised()
            session.add(
                AdminApiKey(key_id=ADMIN_KEY_ID, key_hash=hash_token(key), key_hint=_hint(key))
            )
            await audit.record(
                session,
                None,
                "admin_api_key.init",
                actor="admin",
                target_type="admin_api_key",
                target_id=ADMIN_KEY_ID,
                details={"hint": _hint(key)},
            )
    except IntegrityError:  # a concurrent init won the race
        raise _already_initialised() from None
    return key


async def verify_api_key(db: Database, presented: str | None) -> None:
    """Raise 401 unless ``presented`` is the installation's current key."""
    if not presented or not presented.strip():
        raise AdcpError(
            "AUTH_REQUIRED",
            f"The {HEADER} header is required.",
            suggestion=f"Send '{HEADER}: <key>'. No key yet? POST "
            "/api/v1/tenant-management/init-api-key once to create it.",
        )
    async with db.reading() as session:
        row = await session.get(AdminApiKey, ADMIN_KEY_ID)
    if row is None or not hmac.compare_digest(row.key_hash, hash_token(presented.strip())):
        raise AdcpError(
            "AUTH_INVALID",
            "The tenant management API key is not valid.",
            suggestion="Use the key returned by init-api-key (or by the last rotation).",
        )


async def rotate_api_key(db: Database, presented: str) -> str:
    """Replace the key; the presented one stops working at once. The swap is a
    compare-and-set on the old hash, so two concurrent rotations cannot both win."""
    await verify_api_key(db, presented)
    key = _new_key()
    async with db.transaction() as session:
        result = await session.exec(
            update(AdminApiKey)
            .where(AdminApiKey.key_id == ADMIN_KEY_ID)
            .where(AdminApiKey.key_hash == hash_token(presented.strip()))
            .values(key_hash=hash_token(key), key_hint=_hint(key), rotated_at=utcnow())
        )
        if result.rowcount != 1:
            raise AdcpError(
                "AUTH_INVALID",
                "The tenant management API key was rotated by another request.",
                suggestion="Use the key returned by that rotation.",
            )
        await audit.record(
            session,
            None,
            "admin_api_key.rotate",
            actor="admin",
            target_type="admin_api_key",
            target_id=ADMIN_KEY_ID,
            details={"hint": _hint(key)},
        )
    return key


def _already_initialised() -> AdcpError:
    return AdcpError(
        "CONFLICT",
        "The tenant management API key has already been initialised.",
        suggestion="Use the key you saved when it was created, or rotate it with "
        "POST /api/v1/tenant-management/api-key/rotate.",
    )
