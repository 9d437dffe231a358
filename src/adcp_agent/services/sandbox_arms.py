"""One-shot response arms (``force_create_media_buy_arm``, ``force_get_products_arm``,
``force_get_signals_arm``): the next matching call answers with the forced arm.

A directive is registered per (sandbox account, principal, tool) and consumed by the
next call of that tool from the same principal on the same account — the account the
call names, or its default account when it names none. Consuming is a conditional
delete, so a directive fires exactly once even with concurrent calls or several server
processes. A ``submitted`` arm creates the task it announces, under the forced task_id:
``get_task_status`` finds it for this principal only, and ``force_task_completion``
completes it. A forced create_media_buy is validated like any other first: an invalid
request still gets its real error and leaves the directive armed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.models_media import Task
from adcp_agent.db.models_sandbox import SandboxDirective
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import accounts, audit, booking, media_buys
from adcp_agent.services.idempotency import Completion
from adcp_agent.services.identity import Caller
from adcp_agent.services.sandbox import ControllerError, Scope
from adcp_agent.state import AppState

# tool -> the arms it can be forced into
ARMS: dict[str, tuple[str, ...]] = {
    "create_media_buy": ("submitted", "input-required"),
    "get_products": ("submitted",),
    "get_signals": ("submitted",),
}
MAX_TASK_ID = 64  # our task ids are VARCHAR(64); the protocol allows up to 128


@dataclass(frozen=True)
class ForcedArm:
    tool: str
    arm: str
    message: str
    task: Task | None  # the task a submitted arm created


RenderForced = Callable[[ForcedArm], dict[str, Any]]


async def register(
    scope: Scope, tool: str, arm: str, task_id: str | None, message: str | None
) -> SandboxDirective:
    """Arm ``tool`` for the targeted sandbox account; a second registration before the
    first fired replaces it."""
    if arm not in ARMS[tool]:
        raise ControllerError(
            "INVALID_PARAMS", f"{tool} can be forced into: {', '.join(ARMS[tool])}."
        )
    if arm == "submitted":
        if not task_id:
            raise ControllerError("INVALID_PARAMS", "params.task_id is required for 'submitted'.")
        if len(task_id) > MAX_TASK_ID:
            raise ControllerError(
                "INVALID_PARAMS", f"params.task_id is limited to {MAX_TASK_ID} characters here."
            )
    if message is not None and len(message) > 2000:
        raise ControllerError("INVALID_PARAMS", "params.message is limited to 2000 characters.")
    account = await scope.account()
    async with scope.state.db.transaction() as session:
        await session.exec(
            delete(SandboxDirective).where(
                col(SandboxDirective.tenant_id) == scope.caller.tenant_id,
                col(SandboxDirective.principal_id) == scope.principal_id,
                col(SandboxDirective.account_id) == account.account_id,
                col(SandboxDirective.tool) == tool,
            )
        )
        if task_id and arm == "submitted":
            taken = await session.get(Task, task_id)
            if taken is not None and (
                taken.tenant_id != scope.caller.tenant_id
                or taken.principal_id != scope.principal_id
                or taken.media_buy_id is not None
            ):
                raise ControllerError("INVALID_PARAMS", f"task_id '{task_id}' is already in use.")
        directive = SandboxDirective(
            tenant_id=scope.caller.tenant_id,
            principal_id=scope.principal_id,
            account_id=account.account_id,
            tool=tool,
            arm=arm,
            task_id=task_id if arm == "submitted" else None,
            message=message,
        )
        session.add(directive)
        await audit.record(
            session,
            scope.caller,
            "sandbox.arm",
            actor=scope.actor,
            target_type="account",
            target_id=account.account_id,
            after={"tool": tool, "arm": arm, "task_id": directive.task_id},
        )
    return directive


async def _armed(state: AppState, caller: Caller, tool: str) -> bool:
    """Cheap pre-check on every matching call: is anything armed for this principal?
    Only sandbox callers can arm (and only their sandbox accounts fire), so anyone
    else is answered without a query."""
    if caller.principal_id is None or not caller.sandbox:
        return False
    async with state.db.reading() as session:
        hit = (
            await session.exec(
                select(SandboxDirective.id)
                .where(
                    SandboxDirective.tenant_id == caller.tenant_id,
                    SandboxDirective.principal_id == caller.principal_id,
                    SandboxDirective.tool == tool,
                )
                .limit(1)
            )
        ).first()
    return hit is not None


async def _task_for(session: AsyncSession, caller: Caller, d: SandboxDirective, msg: str) -> Task:
    """The task a submitted arm announces (re-armed task ids start over)."""
    assert d.task_id is not None and caller.principal_id is not None
    task = await session.get(Task, d.task_id)
    if task is None:
        task = Task(
            task_id=d.task_id,
            tenant_id=caller.tenant_id,
            principal_id=caller.principal_id,
            task_type=d.tool,
            status="submitted",
        )
    task.task_type, task.status, task.message = d.tool, "submitted", msg
    task.result = task.error = task.decided_by = None
    task.updated_at = utcnow()
    session.add(task)
    return task


async def _fire(
    state: AppState,
    caller: Caller,
    tool: str,
    account_id: str,
    completion: Completion | None = None,
    render: RenderForced | None = None,
) -> tuple[ForcedArm, dict[str, Any] | None] | None:
    async with state.db.transaction() as session:
        # Delete first, reading what was deleted: the write is the claim (no read that a
        # concurrent consumer could invalidate), so exactly one call gets the row.
        gone = await session.exec(
            delete(SandboxDirective)
            .where(
                col(SandboxDirective.tenant_id) == caller.tenant_id,
                col(SandboxDirective.principal_id) == caller.principal_id,
                col(SandboxDirective.account_id) == account_id,
                col(SandboxDirective.tool) == tool,
            )
            .returning(SandboxDirective.arm, SandboxDirective.task_id, SandboxDirective.message)
        )
        claimed = gone.first()
        if claimed is None:
            return None  # nothing armed, or a concurrent call consumed it first
        directive = SandboxDirective(
            tenant_id=caller.tenant_id,
            principal_id=caller.principal_id or "",
            account_id=account_id,
            tool=tool,
            arm=claimed[0],
            task_id=claimed[1],
            message=claimed[2],
        )
        message = directive.message or (
            f"{tool} was forced into '{directive.arm}' by comply_test_controller."
        )
        task = None
        if directive.arm == "submitted":
            task = await _task_for(session, caller, directive, message)
        forced = ForcedArm(tool, directive.arm, message, task)
        response = None
        if render is not None:
            response = render(forced)
            if completion is not None:
                await completion.mark(session, response)
        await audit.record(
            session,
            caller,
            "sandbox.arm_fired",
            target_type="account",
            target_id=account_id,
            after={"tool": tool, "arm": directive.arm, "task_id": directive.task_id},
        )
    return forced, response


async def take(
    state: AppState, caller: Caller, tool: str, account_ref: dict[str, Any] | None
) -> ForcedArm | None:
    """Consume the directive armed for this call (discovery tools), if any."""
    if not await _armed(state, caller, tool):
        return None
    try:
        account = await accounts.resolve(state.db, caller, account_ref)
    except AdcpError:
        return None  # the call reports its own account error; nothing fires
    fired = await _fire(state, caller, tool, account.account_id)
    return fired[0] if fired else None


async def create_media_buy(
    state: AppState,
    caller: Caller,
    req: media_buys.CreateRequest,
    *,
    completion: Completion,
    render: media_buys.Render,
    render_forced: RenderForced,
) -> dict[str, Any]:
    """``booking.create`` unless a directive is armed for this request's account."""
    if await _armed(state, caller, "create_media_buy"):
        _tenant, account, _booking = await media_buys.prepare(state, caller, req)
        fired = await _fire(
            state, caller, "create_media_buy", account.account_id, completion, render_forced
        )
        if fired is not None and fired[1] is not None:
            return fired[1]
    return await booking.create(state, caller, req, completion=completion, render=render)
