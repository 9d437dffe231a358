"""Idempotent mutations: the same key with the same request returns the first answer;
the same key with a different request is IDEMPOTENCY_CONFLICT; concurrent duplicates
never both act (the claim is a unique row, inserted before any side effect).

The claim is inserted either in a transaction of its own before the action runs, or —
``run_once(..., deferred=True)`` — by the action itself, in its first write
transaction (``Completion.claim``), which must commit before anything happens outside
the database. Deferred, a request that fails validation writes nothing at all, and a
booking commits its claim with its provisional rows instead of in a transaction of its
own. A concurrent duplicate that loses the race to insert it is answered from the
winner's record, as if it had lost it up front."""

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


_EXISTING = select(IdempotencyRecord).where(
    _RECORDS.tenant_id == bindparam("of_tenant"),
    _RECORDS.principal_id == bindparam("of_principal"),
    _RECORDS.tool == bindparam("of_tool"),
    _RECORDS.key == bindparam("of_key"),
)


class _Taken(Exception):
    """A deferred claim lost to a concurrent duplicate's: its record decides."""


def _record(ident: dict[str, Any], digest: str, **values: Any) -> IdempotencyRecord:
    return statements.build(IdempotencyRecord, **ident, request_hash=digest, **values)


def _of(ident: dict[str, Any]) -> dict[str, Any]:
    return {f"of_{k.removesuffix('_id')}": v for k, v in ident.items()}


async def _existing(db: Database, ident: dict[str, Any]) -> IdempotencyRecord | None:
    found = await db.read_models(IdempotencyRecord, _EXISTING, _of(ident))
    return found[0] if found else None


async def _claim(
    db: Database, ident: dict[str, Any], claim: IdempotencyRecord
) -> IdempotencyRecord | None:
    """Insert the claim. Returns the existing record when the key is taken."""
    for _ in range(CLAIM_ATTEMPTS):
        try:
            # Not fsynced: a claim only keeps concurrent duplicates apart, and losing it
            # to a power failure is the same as failing before claiming (the answer,
            # recorded by Completion.mark with the buy, is durable).
            async with db.write(durable=False) as tx:
                await statements.insert(tx, claim)
            return None
        except IntegrityError:
            existing = await _existing(db, ident)
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
    """Delete one claim: named by its id, or by its creation time while unanswered —
    never a duplicate's that took the key after ours was rolled back or released, nor
    one whose answer was committed before what failed after it."""
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

    def __init__(
        self,
        ident: dict[str, Any] | None,
        row: IdempotencyRecord | None = None,
        *,
        claimed: bool = True,
    ) -> None:
        self._ident = ident
        self._pending = None if claimed else row  # a deferred claim, not inserted yet
        # Claimed (or its claim inserted in a transaction that may yet roll back: the
        # release then matches nothing, as it names this claim's creation time).
        self.claimed = ident is not None and claimed
        self.marked = False

    async def claim(self, tx: Tx, *, subject: str | None = None) -> None:
        """Insert a deferred claim in ``tx``, which the action commits before anything
        it does outside the database; ``subject`` names what the action creates there
        (``run_once``'s ``on_stale`` gets it). Raises ``_Taken`` (rolling ``tx`` back)
        when a concurrent duplicate holds the key."""
        pending = self._pending
        if pending is None:
            return
        pending.subject_id = subject
        try:
            await statements.insert(tx, pending)
        except IntegrityError as exc:
            raise _Taken from exc
        self._pending = None
        self.claimed = True

    async def mark(self, session: Tx, response: dict[str, Any]) -> None:
        if self._ident is None:
            return
        pending = self._pending
        if pending is not None:  # never claimed: the answer is the claim
            pending.status, pending.response = "completed", response
            await self.claim(session)
            self.marked = True
            return
        params = {**_of(self._ident), "answer": response, "now": utcnow()}
        # The claim row is ours, and the uncommitted work needs it.
        await statements.execute(session, _COMPLETE, params, expect=1)
        self.marked = True


async def run_once(
    db: Database,
    caller: Caller,
    tool: str,
    key: str | None,
    request: dict[str, Any],
    action: Callable[[Completion], Awaitable[dict[str, Any]]],
    *,
    deferred: bool = False,
    on_stale: Callable[[str], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Run ``action`` at most once per key and return its response; a replay returns the
    stored response marked ``replayed: true``.

    ``action`` must call ``completion.mark(session, response)`` inside the transaction
    that commits its effects; ``deferred``, it must also call ``completion.claim(tx)``
    in a transaction committed before any effect outside the database (``mark``
    claims if nothing did). If it fails (or never marks), the claim is released so the
    buyer can retry with the same key. A claim left unanswered past ``STALE_AFTER``
    (its server stopped) is retaken by the next retry, after ``on_stale`` has put
    right what that attempt left of the subject its claim names (it may raise: the
    claim then stays, and the retry gets the error)."""
    if key is None:
        return await action(Completion(None))
    assert caller.principal_id is not None
    digest = request_hash(request)
    ident = {
        "tenant_id": caller.tenant_id,
        "principal_id": caller.principal_id,
        "tool": tool,
        "key": key,
    }
    deadline = asyncio.get_running_loop().time() + WAIT_FOR_IN_FLIGHT
    while True:
        row = _record(ident, digest, status="in_flight")
        # Our claim while unanswered: by its creation time, never a duplicate's claim.
        mine = {**ident, "created_at": row.created_at, "status": "in_flight"}
        existing = await (_existing(db, ident) if deferred else _claim(db, ident, row))
        if existing is None:
            completion = Completion(ident, row, claimed=not deferred)
            try:
                response = await action(completion)
            except _Taken:
                continue  # a concurrent duplicate claimed first: its record decides
            except BaseException as exc:
                if completion.claimed:  # unless its answer was committed before the failure
                    await _release(db, mine)
                elif isinstance(exc, Exception) and await _existing(db, ident) is not None:
                    # Failed unclaimed while a duplicate claimed (it may have taken the
                    # inventory this one then found short): answer as that one's duplicate.
                    continue
                raise
            if completion.claimed and not completion.marked:
                await _release(db, mine)
            return response
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
            if existing.subject_id is not None and on_stale is not None:
                await on_stale(existing.subject_id)
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
