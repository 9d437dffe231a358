"""Forcing sandbox entities into a state (``force_*_status``, ``force_task_completion``).

Every transition runs through the service a real actor would use: the approval workflow
(``approvals.decide``), the update state machine (``media_updates``), the creative review
(``creatives.decide``), the account decision (``accounts.set_status``). What no service
models — a buy reaching its flight start or end "now" — is a sandbox edit of the flight,
audited like any change. Forcing the state an entity is already in changes nothing and
says so, so replays converge.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import select

from adcp_agent.db.models_creatives import Creative, CreativeAssignment
from adcp_agent.db.models_media import MediaBuy, Package, Task
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import accounts, approvals, audit, buy_state, delivery, media_updates
from adcp_agent.services import creatives as creative_library
from adcp_agent.services.idempotency import Completion
from adcp_agent.services.sandbox import ControllerError, Scope

MAX_RESULT_BYTES = 256 * 1024


@dataclass(frozen=True)
class Transition:
    previous: str
    current: str
    message: str


def buy_status(buy: MediaBuy, scope: Scope) -> str:
    """The status a buyer would read; a buy awaiting the publisher says so."""
    if buy.state == "pending_approval":
        return "pending_approval"
    return buy_state.wire_status(buy, scope.state.clock.now())


Step = Callable[[Scope, MediaBuy, str | None], Awaitable[None]]


async def _approve(scope: Scope, buy: MediaBuy, _reason: str | None) -> None:
    task = await approvals.pending_task_for(scope.state, buy.tenant_id, buy.media_buy_id)
    approver = approvals.Approver(buy.tenant_id, scope.actor)
    await approvals.decide(scope.state, approver, task.task_id, approve=True)


async def _reject(scope: Scope, buy: MediaBuy, reason: str | None) -> None:
    task = await approvals.pending_task_for(scope.state, buy.tenant_id, buy.media_buy_id)
    approver = approvals.Approver(buy.tenant_id, scope.actor)
    reason = reason or "Rejected by comply_test_controller."
    await approvals.decide(scope.state, approver, task.task_id, approve=False, reason=reason)


def _op(kind: str) -> Step:
    async def run(scope: Scope, buy: MediaBuy, reason: str | None) -> None:
        # A forced cancellation plays the seller's part (AdCP's canceled_by: seller).
        who = {"by": "seller", "reason": reason} if kind == "cancel" else None
        await media_updates.update(
            scope.state,
            scope.caller,
            buy.media_buy_id,
            [media_updates.Op(kind, "params.status", value=who)],
            completion=Completion(None),
            render=lambda _outcome: {},
        )

    return run


async def _move_flight(scope: Scope, media_buy_id: str, edge: str) -> None:
    """Start the flight now (``start``) or end it now (``end``): time is the only thing
    between a booked buy and active/completed, and a sandbox may not wait for it."""
    state = scope.state
    now = state.clock.now()
    async with state.db.reading() as session:
        buy = await session.get(MediaBuy, media_buy_id)
    assert buy is not None
    if (edge == "start" and buy.start_time <= now) or (edge == "end" and buy.end_time <= now):
        return
    await delivery.close_hours(state, buy, now)
    async with state.db.transaction() as session:
        stored = await session.get(MediaBuy, media_buy_id)
        assert stored is not None
        before = {
            "start_time": stored.start_time.isoformat(),
            "end_time": stored.end_time.isoformat(),
        }
        if edge == "start":
            stored.start_time = now
        else:
            stored.end_time = max(now, stored.start_time)
        stored.updated_at = utcnow()
        await buy_state.bump_revision(session, stored)
        await audit.record(
            session,
            scope.caller,
            "media_buy.force_flight",
            actor=scope.actor,
            target_type="media_buy",
            target_id=media_buy_id,
            before=before,
            after={
                "start_time": stored.start_time.isoformat(),
                "end_time": stored.end_time.isoformat(),
            },
            revision=stored.revision,
        )


async def _start_now(scope: Scope, buy: MediaBuy, _reason: str | None) -> None:
    await _move_flight(scope, buy.media_buy_id, "start")


async def _end_now(scope: Scope, buy: MediaBuy, _reason: str | None) -> None:
    await _move_flight(scope, buy.media_buy_id, "end")


# (observed status, target) -> the real steps that get there; anything else is illegal.
_PATHS: dict[tuple[str, str], tuple[Step, ...]] = {
    ("pending_approval", "active"): (_approve, _start_now),
    ("pending_approval", "pending_start"): (_approve,),
    ("pending_approval", "rejected"): (_reject,),
    ("pending_approval", "canceled"): (_op("cancel"),),
    ("pending_start", "active"): (_start_now,),
    ("pending_start", "paused"): (_op("pause"),),
    ("pending_start", "canceled"): (_op("cancel"),),
    ("active", "paused"): (_op("pause"),),
    ("active", "canceled"): (_op("cancel"),),
    ("active", "completed"): (_end_now,),
    ("paused", "active"): (_op("resume"), _start_now),
    ("paused", "pending_start"): (_op("resume"),),
    ("paused", "canceled"): (_op("cancel"),),
    ("paused", "completed"): (_end_now,),
}


def _refused(what: str, previous: str, target: str, why: str = "") -> ControllerError:
    return ControllerError(
        "INVALID_TRANSITION",
        f"Cannot transition {what} from {previous} to {target}.{' ' + why if why else ''}",
        current_state=previous,
    )


def _as_controller_error(exc: AdcpError, current: str) -> ControllerError:
    if exc.code in ("INVALID_STATE", "CONFLICT"):
        return ControllerError("INVALID_TRANSITION", exc.message, current_state=current)
    return ControllerError("INTERNAL_ERROR", f"{exc.code}: {exc.message}", current_state=current)


async def force_media_buy_status(
    scope: Scope, media_buy_id: str, target: str, reason: str | None = None
) -> Transition:
    buy = await scope.buy(media_buy_id)
    previous = buy_status(buy, scope)
    what = f"media buy {media_buy_id}"
    if previous == target:
        return Transition(previous, previous, f"Media buy {media_buy_id} is already {target}.")
    if target == "pending_creatives":
        raise _refused(what, previous, target, "Creatives are tracked per package here.")
    steps = _PATHS.get((previous, target))
    if steps is None or buy.archived:
        raise _refused(what, previous, target)
    if target == "pending_start" and buy.start_time <= scope.state.clock.now():
        raise _refused(what, previous, target, "Its flight has already started.")
    for step in steps:
        try:
            await step(scope, buy, reason)
        except AdcpError as exc:
            raise _as_controller_error(exc, previous) from exc
        buy = await scope.buy(media_buy_id)
    current = buy_status(buy, scope)
    return Transition(
        previous, current, f"Media buy {media_buy_id} transitioned {previous} -> {current}."
    )


# Creative review: the library's statuses and the moves a reviewer can make.
CREATIVE_PATHS: dict[str, frozenset[str]] = {
    "processing": frozenset({"pending_review"}),
    "pending_review": frozenset({"approved", "rejected", "archived"}),
    "approved": frozenset({"suspended", "rejected", "archived"}),
    "suspended": frozenset({"approved", "rejected", "archived"}),
    "rejected": frozenset({"pending_review", "approved", "archived"}),
    "archived": frozenset(),
}
_REVIEWED = ("pending_review", "approved", "rejected", "suspended")


async def _close_hours_of_creative(scope: Scope, creative: Creative) -> None:
    """Hours served so far ran with the old status: materialise them first."""
    async with scope.state.db.reading() as session:
        buy_ids = (
            await session.exec(
                select(Package.media_buy_id)
                .join(CreativeAssignment, CreativeAssignment.package_id == Package.package_id)
                .where(CreativeAssignment.creative_pk == creative.id)
            )
        ).all()
    for buy_id in sorted(set(buy_ids)):
        await delivery.close_hours_of(scope.state, buy_id)


async def set_creative_status(
    scope: Scope, creative: Creative, target: str, reason: str | None, *, strict: bool = True
) -> str:
    """Move a creative to ``target``; returns the status it had. Approvals and
    rejections go through the publisher's review (which pushes approved assignments to
    the ad server); the other moves are written with an audit row. ``strict`` enforces
    the review paths (force); seeds set a fixture's status from wherever it is."""
    previous = creative.status
    if previous == target:
        return previous
    if strict and target not in CREATIVE_PATHS.get(previous, frozenset()):
        raise _refused(f"creative {creative.creative_id}", previous, target)
    await _close_hours_of_creative(scope, creative)
    assert creative.id is not None
    if target in ("approved", "rejected") and previous in _REVIEWED:
        await creative_library.decide(
            scope.state,
            creative.tenant_id,
            creative.id,
            approve=target == "approved",
            reason=reason or "Rejected by comply_test_controller.",
            actor=scope.actor,
        )
        return previous
    async with scope.state.db.transaction() as session:
        stored = await session.get(Creative, creative.id)
        assert stored is not None
        stored.status = target
        stored.rejection_reason = reason if target == "rejected" else None
        stored.updated_at = utcnow()
        session.add(stored)
        await audit.record(
            session,
            scope.caller,
            "creative.force_status",
            actor=scope.actor,
            target_type="creative",
            target_id=creative.creative_id,
            before={"status": previous},
            after={"status": target, "reason": reason},
        )
    return previous


async def force_creative_status(
    scope: Scope, creative_id: str, target: str, reason: str | None = None
) -> Transition:
    creative = await scope.creative(creative_id)
    previous = await set_creative_status(scope, creative, target, reason)
    if previous == target:
        return Transition(previous, target, f"Creative {creative_id} is already {target}.")
    return Transition(
        previous, target, f"Creative {creative_id} transitioned {previous} -> {target}."
    )


async def force_account_status(scope: Scope, account_id: str, target: str) -> Transition:
    account = await scope.linked_account(account_id)
    previous = account.status
    if previous == target:
        return Transition(previous, target, f"Account {account_id} is already {target}.")
    if previous == "closed":
        raise _refused(f"account {account_id}", previous, target, "A closed account stays closed.")
    await accounts.set_status(
        scope.state.db, account.tenant_id, account_id, target, actor=scope.actor
    )
    return Transition(
        previous, target, f"Account {account_id} transitioned {previous} -> {target}."
    )


# What a completion payload must carry, by the task's original operation.
_RESULT_KEYS: dict[str, tuple[tuple[str, type], ...]] = {
    "create_media_buy": (("media_buy_id", str), ("packages", list)),
    "update_media_buy": (("media_buy_id", str),),
    "get_products": (("products", list),),
    "get_signals": (("signals", list),),
}


def _check_result(task: Task, result: dict[str, Any]) -> None:
    if not result:
        raise ControllerError("INVALID_PARAMS", "params.result must be a non-empty object.")
    if len(json.dumps(result, default=str).encode()) > MAX_RESULT_BYTES:
        raise ControllerError("INVALID_PARAMS", "params.result is larger than 256 KB.")
    for key, kind in _RESULT_KEYS.get(task.task_type, ()):
        if not isinstance(result.get(key), kind):
            raise ControllerError(
                "INVALID_PARAMS",
                f"A {task.task_type} result needs '{key}' ({kind.__name__}).",
            )
    if task.media_buy_id and result.get("media_buy_id", task.media_buy_id) != task.media_buy_id:
        raise ControllerError(
            "INVALID_PARAMS",
            f"Task {task.task_id} is for media buy {task.media_buy_id}, not "
            f"{result.get('media_buy_id')}.",
        )


async def force_task_completion(scope: Scope, task_id: str, result: dict[str, Any]) -> Transition:
    """Complete a submitted task with ``result``. A task behind a real buy completes
    through the approval workflow (the buy goes live); a task a forced arm created
    records the result as given. The caller's fields are kept verbatim."""
    task = await scope.task(task_id)
    _check_result(task, result)
    if task.status == "completed":
        stored = task.result or {}
        if all(stored.get(k) == v for k, v in result.items()):
            return Transition("completed", "completed", f"Task {task_id} is already completed.")
        raise _refused(
            f"task {task_id}", "completed", "completed", "It completed with another result."
        )
    if task.status != "submitted":
        raise _refused(f"task {task_id}", task.status, "completed")
    if task.media_buy_id is not None:
        buy = await scope.buy(task.media_buy_id)
        try:
            await _approve(scope, buy, None)
        except AdcpError as exc:
            raise _as_controller_error(exc, task.status) from exc
    async with scope.state.db.transaction() as session:
        stored_task = await session.get(Task, task_id)
        assert stored_task is not None
        stored_task.status = "completed"
        stored_task.result = {**(stored_task.result or {}), **result}
        stored_task.decided_by = stored_task.decided_by or scope.actor
        stored_task.updated_at = utcnow()
        session.add(stored_task)
        await audit.record(
            session,
            scope.caller,
            "task.force_completion",
            actor=scope.actor,
            target_type="task",
            target_id=task_id,
            before={"status": "submitted"},
            after={"status": "completed"},
        )
    return Transition(
        "submitted", "completed", f"Task {task_id} transitioned submitted -> completed."
    )
