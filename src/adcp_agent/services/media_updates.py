"""Changing a booked media buy. Every request form (the AdCP patch, the seed-003
``action``s, the seed-002 ``updates`` operations) becomes a list of ``Op``s that are all
validated first (``update_plan``), then sent to the ad server one by one, then
committed. If the ad server refuses one, what it already accepted is committed and
reported; nothing else is.

Updates of one buy take turns: before calling the ad server an update takes the buy's
lease, at the revision it planned from, and confirms the capacity its guaranteed
packages need — reserving it in the same transaction, so a concurrent booking cannot
take it while the ad server is called. The commit gives the lease back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy import delete as sa_delete
from sqlalchemy import update as sa_update
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.adapter_protocol import AdServerAdapter
from adcp_agent.db import statements
from adcp_agent.db.models import Tenant
from adcp_agent.db.models_media import MediaBuy, Package, Task
from adcp_agent.db.statements import Tx
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import (
    accounts,
    audit,
    avails,
    buy_events,
    catalog,
    delivery,
    governance,
    interrupted,
    media_reads,
    push_notifications,
    reporting_webhooks,
    tenants,
)
from adcp_agent.services import creatives as creative_library
from adcp_agent.services.idempotency import Completion
from adcp_agent.services.identity import Caller, new_id
from adcp_agent.services.media_buys import snapshot
from adcp_agent.services.update_plan import Op, Plan, plan_ops
from adcp_agent.state import AppState

__all__ = ["Op", "UpdateOutcome", "load_buy", "update"]

log = logging.getLogger(__name__)


@dataclass
class UpdateOutcome:
    buy: MediaBuy
    packages: list[Package]
    affected: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    task: Task | None = None


Render = Callable[[UpdateOutcome], dict[str, Any]]


_BUYS, _PACKAGES_T = MediaBuy.__table__, Package.__table__  # type: ignore[attr-defined]
_BUY = select(*statements.model_columns(MediaBuy)).where(
    _BUYS.c.media_buy_id == bindparam("buy"),
    _BUYS.c.tenant_id == bindparam("tenant"),
    _BUYS.c.principal_id == bindparam("principal"),
    _BUYS.c.state != "provisioning",
)
_PACKAGES = (
    select(*statements.model_columns(Package))
    .where(_PACKAGES_T.c.media_buy_id == bindparam("buy"))
    .order_by(_PACKAGES_T.c.created_at, _PACKAGES_T.c.package_id)
)


async def load_buy(
    state: AppState, caller: Caller, media_buy_id: str, account_ref: dict[str, Any] | None
) -> tuple[MediaBuy, list[Package]]:
    """The caller's own buy, or MEDIA_BUY_NOT_FOUND (also for other buyers' buys)."""
    caller.require_principal()
    account_id = None
    if account_ref is not None:
        account_id = (await accounts.resolve(state.db, caller, account_ref)).account_id
    # Prebuilt statements, rows built as detached models (``Database.read_models``): an
    # ORM session's identity map and unit of work cost more than the two reads.
    owner = {"tenant": caller.tenant_id, "principal": caller.principal_id}
    found = await state.db.read_models(MediaBuy, _BUY, {"buy": media_buy_id, **owner})
    if not found or (account_id is not None and found[0].account_id != account_id):
        raise AdcpError(
            "MEDIA_BUY_NOT_FOUND",
            f"Media buy '{media_buy_id}' was not found.",
            field="media_buy_id",
            suggestion="Call get_media_buys to list your media buys.",
        )
    packages = await state.db.read_models(Package, _PACKAGES, {"buy": media_buy_id})
    return found[0], packages


# How long an update may hold a buy's lease: its ad-server calls finish well within it;
# what a server killed mid-update reserved is undone once it lapses (interrupted).
LEASE = timedelta(minutes=2)
# How long an update waits for another update of the same buy before answering CONFLICT.
WAIT_SECONDS = 10.0

_CLAIM = (
    sa_update(MediaBuy)
    .where(
        col(MediaBuy.media_buy_id) == bindparam("buy"),
        col(MediaBuy.revision) == bindparam("planned"),
        # A lapsed lease is released first (interrupted.release_lease), never taken
        # over: what its update reserved ahead must be undone before anyone plans.
        col(MediaBuy.update_lease).is_(None),
    )
    .values(update_lease=bindparam("token"), update_lease_until=bindparam("until"))
)


_CLAIM_LEASE = _CLAIM.values(update_lease_undo=bindparam("undo"))
_DROP_PACKAGE = sa_delete(_PACKAGES_T).where(_PACKAGES_T.c.package_id == bindparam("package"))
_NO_UNDO: dict[str, dict[str, list[Any]]] = {"buy": {}, "goals": {}}
_REVISION = select(_BUYS.c.revision).where(_BUYS.c.media_buy_id == bindparam("buy"))


@dataclass
class _Claim:
    """A held lease, and what its transaction reserved ahead of the ad server."""

    token: str
    buy_fields: set[str] = field(default_factory=set)
    package_goals: set[str] = field(default_factory=set)  # package ids
    added: set[str] = field(default_factory=set)  # guaranteed packages added, inserted ahead


async def _claim(state: AppState, buy: MediaBuy, plan: Plan, token: str) -> _Claim | str:
    """Take ``buy``'s lease if it is still at the revision ``plan`` was made from and
    no other update holds it, confirm the guaranteed packages' capacity and reserve it.
    Else why not: ``"moved"`` (changed since: plan again) or ``"busy"`` (wait)."""
    wall = utcnow()  # the lease runs on real time, also under a simulated clock
    params = {
        "buy": buy.media_buy_id,
        "planned": buy.revision,
        "now": wall,
        "token": token,
        "until": wall + LEASE,
    }
    # What the reservation sum reads: the flight, a state that holds inventory again (a
    # resubmission), the goals. Other changes wait for the ad server. Each value
    # replaced is recorded, for undoing it if this server stops.
    ahead: dict[str, Any] = {}
    for edge in ("start_time", "end_time"):
        if getattr(plan.buy, edge) != getattr(buy, edge):
            ahead[edge] = getattr(plan.buy, edge)
    if plan.buy.state in avails.RESERVING and buy.state not in avails.RESERVING:
        ahead["state"] = plan.buy.state
    if not ahead and not plan.holds and not plan.added:
        # Nothing reserved ahead (a budget, a pause, creatives...): the lease alone, in
        # one statement, with nothing to undo — and nothing lost if a power failure took
        # it (a lease nobody was told about; the ad server's side is redone by the
        # buyer's retry): its commit does not wait for the disk.
        async with state.db.write(durable=False) as tx:
            taken = await statements.execute(tx, _CLAIM_LEASE, {**params, "undo": _NO_UNDO})
        return _Claim(token) if taken == 1 else await _why_not(state, buy)
    async with state.db.transaction() as session:
        if await statements.execute(session, _CLAIM, params) == 1:
            postgres = not state.db.is_sqlite
            return await _reserve_ahead(session, buy, plan, token, ahead, postgres=postgres)
    return await _why_not(state, buy)


async def _why_not(state: AppState, buy: MediaBuy) -> str:
    """Why ``buy``'s lease was not taken: ``"busy"`` (another update holds it, at the
    revision planned from: wait) or ``"moved"`` (changed since: plan again)."""
    [now_at] = await state.db.read(_REVISION, {"buy": buy.media_buy_id}) or [None]
    return "busy" if now_at is not None and now_at.revision == buy.revision else "moved"


async def _reserve_ahead(
    session: AsyncSession,
    buy: MediaBuy,
    plan: Plan,
    token: str,
    ahead: dict[str, Any],
    *,
    postgres: bool,
) -> _Claim:
    """In the transaction that took the lease: confirm the guaranteed packages'
    capacity and write ahead what the reservation sums read (``ahead``, the goals),
    recording each value replaced for undoing it if this server stops."""
    await avails.confirm(session, list(plan.holds.values()), postgres=postgres)
    claim = _Claim(token)
    stored = await session.get(MediaBuy, buy.media_buy_id)
    assert stored is not None
    undo: dict[str, Any] = {"buy": {}, "goals": {}}
    for name, value in ahead.items():
        undo["buy"][name] = [
            interrupted.encode(getattr(stored, name)),
            interrupted.encode(value),
        ]
        setattr(stored, name, value)
        claim.buy_fields.add(name)
    added = {p.package_id: p for p in plan.added}
    for package_id, hold in plan.holds.items():
        if package_id in added:
            # A guaranteed package added: its row, inserted now, holds its inventory.
            await statements.insert(session, added[package_id].model_copy())
            undo.setdefault("added", []).append(package_id)
            claim.added.add(package_id)
            continue
        row = await session.get(Package, package_id)
        assert row is not None
        # A smaller goal frees inventory only once the ad server has taken it.
        goal = max(hold.goal, row.impressions_goal or 0)
        undo["goals"][package_id] = [row.impressions_goal, goal]
        row.impressions_goal = goal
        session.add(row)
        claim.package_goals.add(package_id)
    if plan.added:
        # The lines the ad server is about to add: if this server stops before they are
        # committed, they are found and paused there (interrupted.release_lease).
        undo["lines"] = [p.package_id for p in plan.added]
    stored.update_lease_undo = undo
    session.add(stored)
    return claim


def _changed(new: SQLModel, old: SQLModel, *fixed: str) -> set[str]:
    keep = {"updated_at", *fixed}
    return {
        name
        for name, value in new.model_dump().items()
        if name not in keep and value != getattr(old, name)
    }


async def _apply(
    adapter: AdServerAdapter, buy: MediaBuy, plan: Plan
) -> tuple[list[str], AdcpError | None, int]:
    """Send ``plan``'s calls in order until one fails: what was done, the failure, and
    the index of the op whose call failed."""
    done: list[str] = []
    for index, what, call in plan.calls:
        try:
            await call(adapter)
        except AdcpError as exc:
            return done, exc, index
        except Exception:
            log.exception(
                "adapter %s failed updating %s: %s", buy.ad_server, buy.media_buy_id, what
            )
            failure = AdcpError(
                "SERVICE_UNAVAILABLE",
                f"The ad server failed while applying '{what}'.",
                recovery="transient",
                details={"ad_server": buy.ad_server},
            )
            return done, failure, index
        done.append(what)
    return done, None, len(plan.calls)


@cache
def _set(model: type[SQLModel], names: frozenset[str]) -> Any:
    """``UPDATE`` of the columns ``names`` of one row of ``model`` (built once for each
    set of columns: an update changes few, in few combinations)."""
    table = model.__table__  # type: ignore[attr-defined]
    key = table.primary_key.columns[0]
    return (
        sa_update(table)
        .where(key == bindparam("row_key"))
        .values({n: bindparam(f"v_{n}", type_=table.c[n].type) for n in sorted(names)})
    )


async def _set_columns(tx: Tx, row: SQLModel, key: str, names: set[str]) -> None:
    if names:
        params = {"row_key": key, **{f"v_{n}": getattr(row, n) for n in names}}
        await statements.execute(tx, _set(type(row), frozenset(names)), params, expect=1)


async def _write(
    tx: Tx,
    buy: MediaBuy,
    packages: list[Package],
    plan: Plan,
    claim: _Claim,
    *,
    applied: bool = True,
) -> tuple[MediaBuy, list[Package]]:
    """Write ``plan`` over the stored rows — what it changes from ``buy`` and
    ``packages`` as loaded, and whatever the claim reserved ahead — and give the lease
    back. Other columns keep what others committed meanwhile (an approval, a sync): only
    the changed ones are written. ``applied=False`` (nothing reached the ad server;
    ``plan`` is the buy as loaded) undoes the reservation without a new revision. The
    stored rows, as written (detached models)."""
    [found] = await statements.fetch(tx, media_reads.BUY_ROW_LOCKED, {"buy": buy.media_buy_id})
    stored = statements.build(MediaBuy, **found._asdict())
    lease = ("media_buy_id", "revision", "update_lease", "update_lease_until", "update_lease_undo")
    names = _changed(plan.buy, buy, *lease) | claim.buy_fields
    for name in names:
        setattr(stored, name, getattr(plan.buy, name))
    if stored.update_lease == claim.token:
        stored.update_lease = stored.update_lease_until = stored.update_lease_undo = None
        names |= {"update_lease", "update_lease_until", "update_lease_undo"}
    if applied:
        stored.revision += 1
        stored.updated_at = utcnow()
        names |= {"revision", "updated_at"}
    await _set_columns(tx, stored, buy.media_buy_id, names)
    loaded = {p.package_id: p for p in packages}
    current = {
        r.package_id: r for r in await statements.fetch(tx, _PACKAGES, {"buy": buy.media_buy_id})
    }
    rows: list[Package] = []
    for package_id, package in plan.packages.items():
        row = statements.build(Package, **current[package_id]._asdict())
        names = _changed(package, loaded[package_id], "package_id")
        if package_id in claim.package_goals:
            names.add("impressions_goal")
        for name in names:
            setattr(row, name, getattr(package, name))
        if package_id in plan.creatives:
            await creative_library.replace_assignments(
                tx, buy.tenant_id, row, plan.creatives[package_id], "packages"
            )
            names.add("creative_ids")
        if applied and names:
            row.updated_at = utcnow()
            names.add("updated_at")
        await _set_columns(tx, row, package_id, names)
        rows.append(row)
    for package in plan.added:
        row = package.model_copy()
        if package.package_id in current:  # inserted ahead by the claim
            await _set_columns(tx, row, package.package_id, {"external_line_id"})
        else:
            await statements.insert(tx, row)
        await creative_library.replace_assignments(
            tx, buy.tenant_id, row, plan.added_creatives[package.package_id], "new_packages"
        )
        rows.append(row)
    kept = {p.package_id for p in plan.added}
    for package_id in sorted(claim.added - kept):  # inserted ahead, not added after all
        await statements.execute(tx, _DROP_PACKAGE, {"package": package_id}, expect=1)
    return stored, rows


async def _abandon(state: AppState, buy: MediaBuy, packages: list[Package], claim: _Claim) -> None:
    """Nothing reached the ad server: the reservation made ahead goes, the lease too."""
    async with state.db.write() as tx:
        await _write(tx, buy, packages, Plan(buy, packages), claim, applied=False)


def _check_revision(buy: MediaBuy, revision: int | None) -> None:
    if revision is not None and revision != buy.revision:
        raise AdcpError(
            "CONFLICT",
            f"Media buy '{buy.media_buy_id}' is at revision {buy.revision}, not {revision}; "
            "re-read it and retry.",
            field="revision",
            details={"current_revision": buy.revision},
        )


async def _accept_reporting(
    state: AppState,
    caller: Caller,
    tenant: Tenant,
    packages: list[Package],
    config: reporting_webhooks.ReportingWebhookConfig,
) -> reporting_webhooks.ReportingWebhookConfig | None:
    """The reporting webhook checked against the buy's products, its secrets sealed."""
    products = (await catalog.tenant_catalog(state.db, caller)).products_by_id
    channels = sorted(
        {c for p in packages if p.product_id in products for c in products[p.product_id].channels}
    )
    return reporting_webhooks.accept(tenant, config, state.secrets, channels)


async def _set_reporting(
    state: AppState,
    buy: MediaBuy,
    packages: list[Package],
    config: reporting_webhooks.ReportingWebhookConfig | None,
    completion: Completion,
    render: Render,
) -> dict[str, Any]:
    """An update that only sets the reporting webhook: the buy itself is unchanged
    (no ad-server call, no new revision)."""
    assert config is not None
    async with state.db.write() as tx:
        await reporting_webhooks.save(tx, buy, config, state.clock.now())
        outcome = UpdateOutcome(buy, packages, changes=["reporting webhook set"])
        response = render(outcome)
        await completion.mark(tx, response)
    return response


async def update(
    state: AppState,
    caller: Caller,
    media_buy_id: str,
    ops: Sequence[Op],
    *,
    account_ref: dict[str, Any] | None = None,
    revision: int | None = None,
    completion: Completion,
    render: Render,
    now: datetime | None = None,
    push_notification_config: push_notifications.PushNotificationConfig | None = None,
    reporting_webhook: reporting_webhooks.ReportingWebhookConfig | None = None,
    governance_context: str | None = None,
) -> dict[str, Any]:
    if not ops and reporting_webhook is None:
        raise AdcpError("INVALID_REQUEST", "The request changes nothing.", field="media_buy_id")
    tenant = await tenants.callers_tenant(state.db, caller)
    push_config = push_notifications.accept(tenant, push_notification_config, state.secrets)
    reporting = None
    if reporting_webhook is not None:
        buy, packages = await load_buy(state, caller, media_buy_id, account_ref)
        reporting = await _accept_reporting(state, caller, tenant, packages, reporting_webhook)
        if not ops:
            _check_revision(buy, revision)
            return await _set_reporting(state, buy, packages, reporting, completion, render)
    token = new_id("lease")
    deadline = time.monotonic() + WAIT_SECONDS
    pause = 0.02
    while True:
        when = now or state.clock.now()
        buy, packages = await load_buy(state, caller, media_buy_id, account_ref)
        lapsed = buy.update_lease_until is not None and buy.update_lease_until < utcnow()
        if lapsed and await interrupted.release_lease(state, media_buy_id, utcnow()):
            continue  # left by an update that never finished: undone, plan from there
        _check_revision(buy, revision)
        plan = await plan_ops(state, caller, buy, packages, ops, when, tenant=tenant)
        adapter = state.adapters.get(
            tenant, buy.ad_server, account_id=buy.account_id, tool="update_media_buy"
        )
        claim = await _claim(state, buy, plan, token)
        if isinstance(claim, _Claim):
            break
        if time.monotonic() >= deadline:
            raise AdcpError(
                "CONFLICT",
                f"Another change to media buy '{media_buy_id}' is still being applied; "
                "retry shortly.",
                field="media_buy_id",
                recovery="transient",
                details={"current_revision": buy.revision},
            )
        if claim == "busy":
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)
        # "moved": another change was committed since this one was planned: plan again.
    try:
        # A buy booked under a governance plan changes only with its agent's approval.
        approval = await governance.check_change(
            state,
            caller,
            tenant,
            buy,
            packages,
            plan.buy,
            [
                *plan.packages.values(),
                *(p for p in plan.added if p.package_id not in plan.packages),
            ],
            [op.kind for op in ops],
            governance_context,
        )
        # The hours so far ran under the current settings: close them before anything
        # changes.
        await delivery.close_hours(state, buy, when)
        done, failure, failed_op = await _apply(adapter, buy, plan)
        if failure is not None:
            # Only part of the change (or none) reached the ad server: commit the ops it
            # fully took, as they are: capacity was confirmed for the whole change.
            lines = {p.package_id: p.external_line_id for p in plan.added}
            plan = await plan_ops(
                state,
                caller,
                buy,
                packages,
                ops[:failed_op],
                when,
                tenant=tenant,
                check_capacity=False,
            )
            for package in plan.added:  # the lines the ad server added
                package.external_line_id = lines[package.package_id]
    except BaseException:
        await _abandon(state, buy, packages, claim)
        raise
    if failure is not None and not done:
        await _abandon(state, buy, packages, claim)
        raise failure
    if approval is not None:
        approval.keep(plan.buy)
    async with state.db.write() as session:
        stored, rows = await _write(session, buy, packages, plan, claim)
        if plan.task is not None:
            await statements.insert(session, plan.task)
        await audit.record(
            session,
            caller,
            "media_buy.update",
            target_type="media_buy",
            target_id=media_buy_id,
            before=snapshot(buy, packages),
            after=snapshot(stored, rows),
            details={"operations": [op.kind for op in ops], "applied": done},
            success=failure is None,
            revision=stored.revision if stored.revision != buy.revision else None,
        )
        await buy_events.updated(
            session,
            stored,
            rows,
            state_before=buy.state,
            task=plan.task,
            push_config=push_config,
        )
        outcome = UpdateOutcome(stored, rows, plan.affected, done, plan.task)
        response = render(outcome)
        if reporting is not None:
            await reporting_webhooks.save(session, stored, reporting, state.clock.now())
        if failure is None:
            await completion.mark(session, response)
    if plan.creatives or any(plan.added_creatives.values()):
        await creative_library.push_pending(state, buy.tenant_id, buy.principal_id)
    if failure is not None:
        raise AdcpError(
            failure.code,
            f"{failure.message} Applied before the failure: {'; '.join(done)}.",
            field=failure.field,
            recovery=failure.recovery,
            details={**failure.details, "applied": done, "revision": stored.revision},
        )
    return response
