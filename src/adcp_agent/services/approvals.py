"""Human-in-the-loop: tasks a buyer can poll, and the publisher's approval decisions.

Only a tenant admin (the admin API, the CLI, or a principal with role ``admin``) may
decide, and never on work its own principal submitted: a buyer cannot approve itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, false, func, update
from sqlmodel import col, select

from adcp_agent.db import statements
from adcp_agent.db.models import Tenant
from adcp_agent.db.models_media import MediaBuy, Task
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import audit, buy_events, buy_state, delivery, paging
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Approver:
    """Who decides: ``actor`` is recorded; ``principal_id`` is set when a principal (role
    admin) decides through MCP, so self-approval can be refused."""

    tenant_id: str
    actor: str
    principal_id: str | None = None


def approver_for(caller: Caller) -> Approver:
    if caller.role != "admin":
        raise AdcpError(
            "PERMISSION_DENIED",
            "Only the publisher's admins can approve or reject orders.",
            suggestion="Wait for the publisher; poll get_task_status.",
        )
    return Approver(caller.tenant_id, caller.actor, caller.principal_id)


async def _task(state: AppState, tenant_id: str, task_id: str) -> Task:
    async with state.db.reading() as session:
        task = await session.get(Task, task_id)
    if task is None or task.tenant_id != tenant_id:
        raise AdcpError("REFERENCE_NOT_FOUND", f"Task '{task_id}' was not found.", field="task_id")
    return task


async def pending_task_for(state: AppState, tenant_id: str, media_buy_id: str) -> Task:
    async with state.db.reading() as session:
        task = (
            await session.exec(
                select(Task).where(
                    Task.tenant_id == tenant_id,
                    Task.media_buy_id == media_buy_id,
                    Task.status == "submitted",
                )
            )
        ).first()
    if task is None:
        raise AdcpError(
            "INVALID_STATE",
            f"Media buy '{media_buy_id}' has no order awaiting approval.",
            field="media_buy_id",
        )
    return task


# A decision claims its task (submitted -> working, decided_by set) before it calls the
# ad server: a second decision of the same task at the same moment — another admin, the
# CLI — is refused at once instead of both reaching the ad server and the last one's
# answer standing. A claim a stopped server left behind goes back to submitted after
# DECIDING (``release_stale_decisions``, from the interrupted-work sweep).
DECIDING = timedelta(minutes=2)
_T = Task.__table__.c  # type: ignore[attr-defined]
_CLAIM = (
    update(Task)
    .where(_T.task_id == bindparam("task"), _T.status == "submitted")
    .values(status="working", decided_by=bindparam("actor"), updated_at=bindparam("now"))
)
_UNCLAIM = (
    update(Task)
    .where(_T.task_id == bindparam("task"), _T.status == "working")
    .values(status="submitted", decided_by=None, updated_at=bindparam("now"))
)
_STALE = (
    update(Task)
    .where(
        _T.status == "working",
        _T.decided_by.is_not(None),
        _T.updated_at < bindparam("cutoff"),
    )
    .values(status="submitted", decided_by=None, updated_at=bindparam("now"))
)


async def _claim_decision(state: AppState, task_id: str, approver: Approver) -> None:
    params = {"task": task_id, "actor": approver.actor, "now": utcnow()}
    async with state.db.write() as tx:
        claimed = await statements.execute(tx, _CLAIM, params)
    if claimed != 1:
        raise AdcpError(
            "INVALID_STATE",
            f"Task '{task_id}' is being decided or was decided meanwhile.",
            field="task_id",
            suggestion="Read the task again (GET the approvals queue or get_task_status).",
        )


async def release_stale_decisions(state: AppState, now: datetime) -> int:
    """Decisions claimed and never finished (their server stopped): back to submitted,
    to be decided again. How many."""
    async with state.db.write() as tx:
        released = await statements.execute(tx, _STALE, {"cutoff": now - DECIDING, "now": now})
    if released:
        log.warning("%d approval decision(s) left unfinished went back to submitted", released)
    return released


async def decide(
    state: AppState, approver: Approver, task_id: str, *, approve: bool, reason: str | None = None
) -> tuple[Task, MediaBuy]:
    task = await _task(state, approver.tenant_id, task_id)
    if approver.principal_id is not None and approver.principal_id == task.principal_id:
        raise AdcpError(
            "PERMISSION_DENIED",
            "A principal cannot approve or reject its own order.",
            field="task_id",
        )
    if task.status != "submitted" or task.media_buy_id is None:
        raise AdcpError(
            "INVALID_STATE",
            f"Task '{task_id}' is {task.status}; only submitted tasks can be decided.",
            field="task_id",
        )
    async with state.db.reading() as session:
        buy = await session.get(MediaBuy, task.media_buy_id)
        tenant = await session.get(Tenant, approver.tenant_id)
    assert buy is not None and tenant is not None
    if buy.state != "pending_approval":
        raise AdcpError(
            "INVALID_STATE",
            f"Media buy '{buy.media_buy_id}' is not awaiting approval.",
            field="task_id",
        )
    await _claim_decision(state, task_id, approver)
    try:
        # Hours before the decision did not serve: close them before the buy goes live.
        await delivery.close_hours(state, buy)
        if approve:
            adapter = state.adapters.get(tenant, buy.ad_server)
            await adapter.order_action(buy.external_order_id or "", "approve")
            await adapter.order_action(buy.external_order_id or "", "activate")
    except BaseException:
        async with state.db.write() as tx:
            await statements.execute(tx, _UNCLAIM, {"task": task_id, "now": utcnow()})
        raise
    async with state.db.transaction() as session:
        stored_buy = await session.get(MediaBuy, buy.media_buy_id)
        stored_task = await session.get(Task, task_id)
        assert stored_buy is not None and stored_task is not None
        now = utcnow()
        stored_buy.state = "live" if approve else "rejected"
        stored_buy.updated_at = now
        if approve:
            stored_buy.approved_by = approver.actor
            stored_buy.approved_at = now
        else:
            stored_buy.rejection_reason = reason
        stored_task.status = "completed" if approve else "rejected"
        stored_task.decided_by = approver.actor
        stored_task.updated_at = now
        stored_task.message = (
            f"Approved by the publisher; media buy {buy.media_buy_id} is booked."
            if approve
            else f"The publisher declined this order: {reason or 'no reason given'}."
        )
        if approve:
            stored_task.result = {"media_buy_id": buy.media_buy_id}
        else:
            stored_task.error = {
                "code": "TERMS_REJECTED",
                "message": f"The publisher declined the order: {reason or 'no reason given'}.",
            }
        session.add(stored_task)
        await buy_state.bump_revision(session, stored_buy)
        await audit.record(
            session,
            None,
            "media_buy.approve" if approve else "media_buy.reject",
            actor=approver.actor,
            tenant_id=approver.tenant_id,
            target_type="media_buy",
            target_id=buy.media_buy_id,
            before={"state": "pending_approval"},
            after={"state": stored_buy.state},
            details={"task_id": task_id, "reason": reason},
            revision=stored_buy.revision,
        )
        await buy_events.decided(session, stored_buy, stored_task, approve=approve, reason=reason)
    return stored_task, stored_buy


async def get_task(state: AppState, caller: Caller, task_id: str) -> Task:
    caller.require_principal()
    task = await _task(state, caller.tenant_id, task_id)
    if task.principal_id != caller.principal_id and caller.role != "admin":
        raise AdcpError("REFERENCE_NOT_FOUND", f"Task '{task_id}' was not found.", field="task_id")
    return task


# The AdCP protocol ("domain") of each task type; any other type is a media-buy task.
TASK_DOMAIN = {
    "create_media_buy": "media-buy",
    "update_media_buy": "media-buy",
    "get_signals": "signals",
    "activate_signal": "signals",
    "sync_creatives": "creative",
}
_DOMAIN = case(TASK_DOMAIN, value=col(Task.task_type), else_="media-buy")


def task_domain(task_type: str) -> str:
    """A task type's AdCP protocol (what ``_DOMAIN`` computes in SQL)."""
    return TASK_DOMAIN.get(task_type, "media-buy")


_SORTS: dict[str, Any] = {
    "created_at": col(Task.created_at),
    "updated_at": col(Task.updated_at),
    "status": col(Task.status),
    "task_type": col(Task.task_type),
    "protocol": _DOMAIN,
}


@dataclass(frozen=True)
class TaskQuery:
    """list_tasks' filters (each given one must match) and order."""

    statuses: Sequence[str] = ()
    task_types: Sequence[str] = ()
    protocols: Sequence[str] = ()
    task_ids: Sequence[str] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    context_contains: str | None = None  # in the task's media_buy_id, any case
    has_webhook: bool | None = None
    sort: str = "created_at"  # a key of _SORTS
    descending: bool = True


@dataclass(frozen=True)
class TaskListing:
    """One page of the caller's tasks, and how many match in all by (status, type)."""

    tasks: list[Task]
    counts: dict[tuple[str, str], int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _task_filters(caller: Caller, query: TaskQuery) -> list[Any]:
    where: list[Any] = [
        Task.tenant_id == caller.tenant_id,
        Task.principal_id == caller.principal_id,
    ]
    where += paging.conditions(
        [
            (col(Task.status), query.statuses),
            (col(Task.task_type), query.task_types),
            (_DOMAIN, query.protocols),
            (col(Task.task_id), query.task_ids),
        ],
        [
            (col(Task.created_at), query.created_after, query.created_before),
            (col(Task.updated_at), query.updated_after, query.updated_before),
        ],
    )
    if query.context_contains:
        needle = query.context_contains.lower()
        where.append(func.lower(col(Task.media_buy_id)).contains(needle, autoescape=True))
    if query.has_webhook:
        where.append(false())  # no task carries a webhook of its own
    return where


async def list_tasks(
    state: AppState,
    caller: Caller,
    query: TaskQuery = TaskQuery(),
    *,
    offset: int = 0,
    limit: int | None = None,
) -> TaskListing:
    """The caller's tasks matching ``query``, in its order (then by task_id), paged in
    the database; the counts come from one GROUP BY over the same filters."""
    caller.require_principal()
    where = _task_filters(caller, query)
    key = _SORTS[query.sort]
    stmt = (
        select(Task)
        .where(*where)
        .order_by(key.desc() if query.descending else key.asc(), col(Task.task_id))
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    grouped = (
        select(Task.status, Task.task_type, func.count())
        .where(*where)
        .group_by(col(Task.status), col(Task.task_type))
    )
    async with state.db.reading() as session:
        tasks = list((await session.exec(stmt)).all())
        counts = {(status, kind): n for status, kind, n in (await session.exec(grouped)).all()}
    return TaskListing(tasks, counts)


async def pending(state: AppState, tenant_id: str | None = None) -> list[Task]:
    """The publisher's approval queue (admin API and CLI)."""
    async with state.db.reading() as session:
        stmt = select(Task).where(Task.status == "submitted")
        if tenant_id:
            stmt = stmt.where(Task.tenant_id == tenant_id)
        return list((await session.exec(stmt.order_by(Task.created_at))).all())


async def decide_as_admin(
    state: AppState, task_id: str, *, approve: bool, reason: str | None, actor: str
) -> tuple[Task, MediaBuy]:
    """The installation admin (admin API key or CLI) decides for whichever tenant owns
    the task."""
    async with state.db.reading() as session:
        task = await session.get(Task, task_id)
    if task is None:
        raise AdcpError("REFERENCE_NOT_FOUND", f"Task '{task_id}' was not found.", field="task_id")
    if not approve and not (reason and reason.strip()):
        raise AdcpError(
            "VALIDATION_ERROR", "A rejection needs a reason the buyer can act on.", field="reason"
        )
    return await decide(
        state, Approver(task.tenant_id, actor), task_id, approve=approve, reason=reason
    )
