"""Idempotent mutations: the same key with the same request returns the first answer;
the same key with a different request is IDEMPOTENCY_CONFLICT; concurrent duplicates
never both act (the claim is a unique row, inserted before any side effect)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import delete, select, update

from adcp_agent.db import statements
from adcp_agent.db.engine import Database
from adcp_agent.db.models_media import IdempotencyRecord
from adcp_agent.db.statements import Tx
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services.identity import Caller

# A claim older than this with no answer is from a crashed attempt; it may be retaken.
STALE_AFTER = timedelta(minutes=2)
WAIT_FOR_IN_FLIGHT = 10.0  # seconds a concurrent duplicate waits for the first answer
CLAIM_ATTEMPTS = 5  # a released claim can be retaken; past this, the caller retries


def request_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


_RECORDS = IdempotencyRecord.__table__.c  # type: ignore[attr-defined]
_COMPLETE = (
    update(IdempotencyRecord.__table__)  # type: ignore[arg-type]  # Core: no ORM sync
    .where(
        _RECORDS.tenant_id == bindparam("of_tenant"),
        _RECORDS.principal_id == bindparam("of_principal"),
        _RECORDS.tool == bindparam("of_tool"),
        _RECORDS.key == bindparam("of_key"),
    )
    .values(status="completed", response=bindparam("answer"), updated_at=bindparam("now"))
)


async def _claim(
    db: Database, caller: Caller, tool: str, key: str, digest: str
) -> IdempotencyRecord | None:
    """Insert the claim. Returns the existing record when the key is taken."""
    assert caller.principal_id is not None
    for _ in range(CLAIM_ATTEMPTS):
        try:
            claim = statements.build(
                IdempotencyRecord,
                tenant_id=caller.tenant_id,
                principal_id=caller.principal_id,
                tool=tool,
                key=key,
                request_hash=digest,
                status="in_flight",
            )
            # Not fsynced: a claim only keeps concurrent duplicates apart, and losing it
            # to a power failure is the same as failing before claiming (the answer,
            # recorded by Completion.mark with the buy, is durable).
            async with db.write(durable=False) as tx:
                await statements.insert(tx, claim)
            return None
        except IntegrityError:
            async with db.session() as session:
                existing = (
                    await session.exec(
                        select(IdempotencyRecord).where(
                            IdempotencyRecord.tenant_id == caller.tenant_id,
                            IdempotencyRecord.principal_id == caller.principal_id,
                            IdempotencyRecord.tool == tool,
                            IdempotencyRecord.key == key,
                        )
                    )
                ).first()
            if existing is not None:
                return existing
            # The holder released its claim (its attempt failed) between our insert and
            # this read — another process can do that at any moment: claim again.
    raise AdcpError(
        "IDEMPOTENCY_IN_FLIGHT",
        "The same request is being retried concurrently; retry shortly with the same key.",
        field="idempotency_key",
        recovery="transient",
    )


async def _release(db: Database, record_filter: dict[str, Any]) -> None:
    async with db.transaction() as session:
        await session.exec(
            delete(IdempotencyRecord).where(
                *(getattr(IdempotencyRecord, k) == v for k, v in record_filter.items())
            )
        )


class Completion:
    """Handed to the action: it records the response in the action's own final
    transaction, so "committed" and "answered" can never diverge (no double booking
    after a crash between the two)."""

    def __init__(self, ident: dict[str, Any] | None) -> None:
        self._ident = ident
        self.marked = False

    async def mark(self, session: Tx, response: dict[str, Any]) -> None:
        if self._ident is None:
            return
        ident = self._ident
        params = {
            "of_tenant": ident["tenant_id"],
            "of_principal": ident["principal_id"],
            "of_tool": ident["tool"],
            "of_key": ident["key"],
            "answer": response,
            "now": utcnow(),
        }
        if (
            await statements.execute(session, _COMPLETE, params) != 1
        ):  # the claim row is ours and uncommitted work needs it
            raise RuntimeError(f"idempotency claim {self._ident} vanished")
        self.marked = True


async def run_once(
    db: Database,
    caller: Caller,
    tool: str,
    key: str | None,
    request: dict[str, Any],
    action: Callable[[Completion], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Run ``action`` at most once per key and return its response; a replay returns the
    stored response marked ``replayed: true``.

    ``action`` must call ``completion.mark(session, response)`` inside the transaction
    that commits its effects. If it fails (or never marks), the claim is released so
    the buyer can retry with the same key."""
    if key is None:
        return await action(Completion(None))
    digest = request_hash(request)
    ident = {
        "tenant_id": caller.tenant_id,
        "principal_id": caller.principal_id,
        "tool": tool,
        "key": key,
    }
    deadline = asyncio.get_running_loop().time() + WAIT_FOR_IN_FLIGHT
    while True:
        existing = await _claim(db, caller, tool, key, digest)
        if existing is None:
            break
        if existing.request_hash != digest:
            raise AdcpError(
                "IDEMPOTENCY_CONFLICT",
                f"idempotency_key '{key}' was already used with a different request.",
                field="idempotency_key",
                suggestion="Use a new key for a different request.",
            )
        if existing.status == "completed" and existing.response is not None:
            # AdCP's envelope flag: this answer is the stored one, nothing was done again.
            return {**existing.response, "replayed": True}
        if utcnow() - existing.updated_at > STALE_AFTER:
            await _release(db, {**ident, "id": existing.id})
            continue
        if asyncio.get_running_loop().time() > deadline:
            raise AdcpError(
                "IDEMPOTENCY_IN_FLIGHT",
                "The same request is still being processed; retry shortly with the same key.",
                field="idempotency_key",
                recovery="transient",
            )
        await asyncio.sleep(0.05)
    completion = Completion(ident)
    try:
        response = await action(completion)
    except BaseException:
        await _release(db, ident)
        raise
    if not completion.marked:
        await _release(db, ident)
    return response
