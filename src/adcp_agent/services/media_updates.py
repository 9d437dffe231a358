"""Changing a booked media buy. Every request form (the AdCP patch, the seed-003
``action``s, the seed-002 ``updates`` operations) becomes a list of ``Op``s that are all
validated first, then sent to the ad server one by one, then committed. If the ad server
refuses one, what it already accepted is committed and reported; nothing else is."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import select

from adcp_agent.adapter_protocol import AdServerAdapter, LineChange
from adcp_agent.db.models import Product, Signal, Tenant
from adcp_agent.db.models_creatives import Creative
from adcp_agent.db.models_media import MediaBuy, Package, Task
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import (
    accounts,
    audit,
    avails,
    buy_events,
    buy_state,
    catalog,
    delivery,
    push_notifications,
)
from adcp_agent.services import creatives as creative_library
from adcp_agent.services import targeting as targeting_rules
from adcp_agent.services.idempotency import Completion
from adcp_agent.services.identity import Caller, new_id
from adcp_agent.services.media_buys import snapshot
from adcp_agent.state import AppState


@dataclass(frozen=True)
class Op:
    kind: str
    field: str
    package_id: str | None = None
    value: Any = None


@dataclass
class UpdateOutcome:
    buy: MediaBuy
    packages: list[Package]
    affected: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    task: Task | None = None


Render = Callable[[UpdateOutcome], dict[str, Any]]
AdapterCall = Callable[[AdServerAdapter], Awaitable[None]]


async def load_buy(
    state: AppState, caller: Caller, media_buy_id: str, account_ref: dict[str, Any] | None
) -> tuple[MediaBuy, list[Package]]:
    """The caller's own buy, or MEDIA_BUY_NOT_FOUND (also for other buyers' buys)."""
    caller.require_principal()
    account_id = None
    if account_ref is not None:
        account_id = (await accounts.resolve(state.db, caller, account_ref)).account_id
    async with state.db.session() as session:
        buy = await session.get(MediaBuy, media_buy_id)
        visible = (
            buy is not None
            and buy.tenant_id == caller.tenant_id
            and buy.principal_id == caller.principal_id
            and buy.state != "provisioning"
            and (account_id is None or buy.account_id == account_id)
        )
        if not visible:
            raise AdcpError(
                "MEDIA_BUY_NOT_FOUND",
                f"Media buy '{media_buy_id}' was not found.",
                field="media_buy_id",
                suggestion="Call get_media_buys to list your media buys.",
            )
        assert buy is not None
        packages = list(
            (
                await session.exec(
                    select(Package)
                    .where(Package.media_buy_id == media_buy_id)
                    .order_by(Package.created_at, Package.package_id)
                )
            ).all()
        )
    return buy, packages


class _Plan:
    """Working copies plus the ad-server calls that realise them."""

    def __init__(self, buy: MediaBuy, packages: list[Package]) -> None:
        self.buy = buy.model_copy()
        self.packages = {p.package_id: p.model_copy(deep=True) for p in packages}
        # (index of the op that planned it, description, call)
        self.calls: list[tuple[int, str, AdapterCall]] = []
        self.op_index = 0
        self.affected: list[str] = []
        self.task: Task | None = None
        self.creatives: dict[str, list[Creative]] = {}  # package_id -> new assignment

    def call(self, what: str, fn: AdapterCall) -> None:
        self.calls.append((self.op_index, what, fn))

    def package(self, op: Op) -> Package:
        package = self.packages.get(op.package_id or "")
        if package is None:
            raise AdcpError(
                "PACKAGE_NOT_FOUND",
                f"Package '{op.package_id}' is not part of media buy '{self.buy.media_buy_id}'.",
                field=op.field,
            )
        return package

    def touch(self, package: Package) -> None:
        if package.package_id not in self.affected:
            self.affected.append(package.package_id)

    def line(self, package: Package, change: LineChange, what: str) -> None:
        order, line = self.buy.external_order_id or "", package.external_line_id or ""
        self.call(what, lambda a: a.update_line(order, line, change))
        self.touch(package)

    def order(self, action: str, what: str) -> None:
        order = self.buy.external_order_id or ""
        self.call(what, lambda a: a.order_action(order, action))  # type: ignore[arg-type]


async def _context(state: AppState, tenant_id: str, packages: Sequence[Package]):
    async with state.db.session() as session:
        tenant = await session.get(Tenant, tenant_id)
        products = await catalog.products_by_id(
            session, tenant_id, [p.product_id for p in packages]
        )
        signal_ids = set(
            (
                await session.exec(select(Signal.signal_id).where(Signal.tenant_id == tenant_id))
            ).all()
        )
    assert tenant is not None
    return tenant, products, signal_ids


def _min_spend(product: Product, package: Package) -> float:
    for option in product.pricing_options:
        if option["pricing_option_id"] == package.pricing_option_id:
            return float(option.get("min_spend") or 0)
    return 0.0


def _floor(product: Product, package: Package) -> float | None:
    for option in product.pricing_options:
        if option["pricing_option_id"] == package.pricing_option_id:
            return option.get("floor_price")
    return None


async def _check_capacity(
    state: AppState, caller: Caller, tenant: Tenant, plan: _Plan, package: Package, field: str
) -> None:
    if not package.guaranteed or not package.impressions_goal:
        return
    [avail] = await avails.check(
        state,
        caller,
        tenant,
        [package.product_id],
        plan.buy.start_time,
        plan.buy.end_time,
        package.targeting,
        exclude_media_buy=plan.buy.media_buy_id,
        sandbox=plan.buy.sandbox,
    )
    if package.impressions_goal > avail.available_impressions:
        raise AdcpError(
            "PRODUCT_UNAVAILABLE",
            f"Only {avail.available_impressions:,} impressions of '{package.product_id}' are "
            f"available for this flight; {package.impressions_goal:,} would be needed.",
            field=field,
            details={"available_impressions": avail.available_impressions},
        )


def _set_budget(plan: _Plan, package: Package, product: Product, budget: float, op: Op) -> None:
    floor = _min_spend(product, package)
    if budget <= 0 or budget < floor:
        raise AdcpError(
            "BUDGET_TOO_LOW",
            f"Budget {budget:,.2f} is below the {floor:,.2f} minimum for '{package.product_id}'.",
            field=op.field,
            details={"minimum_budget": floor, "currency": plan.buy.currency},
        )
    package.budget = round(float(budget), 2)
    package.impressions_goal = int(package.budget / package.rate * 1000)
    plan.line(
        package,
        LineChange(budget=package.budget, impressions_goal=package.impressions_goal),
        f"{package.package_id} budget {package.budget:,.2f}",
    )


async def plan_ops(
    state: AppState,
    caller: Caller,
    buy: MediaBuy,
    packages: list[Package],
    ops: Sequence[Op],
    now: datetime,
) -> _Plan:
    """Validate every op against working copies; no side effects."""
    tenant, products, signal_ids = await _context(state, caller.tenant_id, packages)
    plan = _Plan(buy, packages)
    b = plan.buy
    for index, op in enumerate(ops):
        plan.op_index = index
        k = op.kind
        if k in ("pause", "resume", "cancel", "archive"):
            buy_state.require(b, k, now, op.field)
            b.state = {"pause": "paused", "resume": "live", "cancel": "canceled"}.get(k, b.state)
            b.archived = b.archived or k == "archive"
            plan.order(k, f"order {k}")
            continue
        if k == "activate":
            if b.guaranteed:
                lines = sorted({"STANDARD" for p in plan.packages.values() if p.guaranteed})
                raise AdcpError(
                    "INVALID_STATE",
                    f"Cannot auto-activate order with guaranteed line items ({lines}). "
                    "Use submit_for_approval instead.",
                    field=op.field,
                )
            buy_state.require(b, "activate", now, op.field)
            if b.state == "paused":
                b.state = "live"
                plan.order("resume", "order activate")
            continue
        if k == "submit_for_approval":
            if not b.guaranteed:
                raise AdcpError(
                    "INVALID_REQUEST",
                    "Non-guaranteed orders activate immediately; use activate_order.",
                    field=op.field,
                )
            buy_state.require(b, "submit_for_approval", now, op.field)
            b.state = "pending_approval"
            plan.task = Task(
                task_id=new_id("task"),
                tenant_id=b.tenant_id,
                principal_id=b.principal_id,
                task_type="create_media_buy",
                status="submitted",
                media_buy_id=b.media_buy_id,
                message=f"Media buy {b.media_buy_id} was resubmitted for the publisher's approval.",
            )
            continue
        buy_state.require(b, "update", now, op.field)
        if k == "end_time":
            end: datetime = op.value
            if end <= max(now, b.start_time):
                raise AdcpError(
                    "VALIDATION_ERROR",
                    "end_time must be in the future and after start_time.",
                    field=op.field,
                )
            b.end_time = end
            for package in plan.packages.values():
                plan.line(package, LineChange(end=end), f"{package.package_id} end {end:%Y-%m-%d}")
            for package in plan.packages.values():
                await _check_capacity(state, caller, tenant, plan, package, op.field)
            continue
        if k == "daily_cap":
            amount = float(op.value)
            if amount <= 0:
                raise AdcpError("VALIDATION_ERROR", "A daily cap must be positive.", field=op.field)
            b.daily_cap = amount
            total = sum(p.budget for p in plan.packages.values()) or 1.0
            for package in plan.packages.values():
                share = round(amount * package.budget / total, 2)
                plan.line(
                    package,
                    LineChange(daily_budget=share),
                    f"{package.package_id} daily cap {share:,.2f}",
                )
            continue
        if k == "adjust_bid":
            auction = [p for p in plan.packages.values() if not p.guaranteed]
            if not auction:
                raise AdcpError(
                    "INVALID_REQUEST",
                    "Bid adjustments apply to auction (non-guaranteed) packages; "
                    "this buy has none.",
                    field=op.field,
                )
            for device, delta in op.value.items():
                if device not in targeting_rules.DEVICE_TYPES:
                    raise AdcpError(
                        "VALIDATION_ERROR", f"Unknown device type '{device}'.", field=op.field
                    )
                for package in auction:
                    adjusted = package.bid_adjustments.get(device, 0.0) + float(delta)
                    if not -90 <= adjusted <= 200:
                        raise AdcpError(
                            "VALIDATION_ERROR",
                            f"The {device} bid adjustment would be {adjusted:+.0f}%; it must stay "
                            "between -90% and +200%.",
                            field=op.field,
                        )
                    package.bid_adjustments = {**package.bid_adjustments, device: adjusted}
            for package in auction:
                plan.line(
                    package,
                    LineChange(device_bid_adjustments=package.bid_adjustments),
                    f"{package.package_id} device bids {package.bid_adjustments}",
                )
            continue
        if k in ("add_geo", "remove_geo"):
            countries = [c.upper() for c in op.value]
            for package in plan.packages.values():
                product = products[package.product_id]
                overlay = dict(package.targeting)
                current = list(overlay.get("geo_countries", []))
                if k == "add_geo":
                    overlay["geo_countries"] = sorted(set(current) | set(countries))
                elif current:
                    remaining = sorted(set(current) - set(countries))
                    if not remaining:
                        raise AdcpError(
                            "VALIDATION_ERROR",
                            f"Removing {', '.join(countries)} would leave package "
                            f"'{package.package_id}' with no country to deliver in.",
                            field=op.field,
                        )
                    overlay["geo_countries"] = remaining
                else:
                    excluded = overlay.get("geo_countries_exclude", [])
                    overlay["geo_countries_exclude"] = sorted(set(excluded) | set(countries))
                package.targeting = targeting_rules.validate(overlay, product, signal_ids, op.field)
                plan.line(
                    package,
                    LineChange(targeting=targeting_rules.to_adapter(overlay)),
                    f"{package.package_id} {k.replace('_', ' ')} {', '.join(countries)}",
                )
            continue
        if k == "shift_budget":
            src, dst, percent = op.value
            if not 0 < percent <= 100:
                raise AdcpError(
                    "VALIDATION_ERROR",
                    "percent must be between 0 and 100.",
                    field=f"{op.field}.percent",
                )
            a = plan.package(Op(k, f"{op.field}.from_package_id", src))
            z = plan.package(Op(k, f"{op.field}.to_package_id", dst))
            if a.package_id == z.package_id:
                raise AdcpError(
                    "VALIDATION_ERROR", "Budget must move between two packages.", field=op.field
                )
            moved = round(a.budget * percent / 100, 2)
            _set_budget(
                plan, a, products[a.product_id], a.budget - moved, Op(k, f"{op.field}.percent")
            )
            _set_budget(plan, z, products[z.product_id], z.budget + moved, op)
            await _check_capacity(state, caller, tenant, plan, z, op.field)
            continue
        # Package-level ops.
        package = plan.package(op)
        product = products[package.product_id]
        if k in ("package_pause", "package_resume"):
            package.paused = k == "package_pause"
            order, line = b.external_order_id or "", package.external_line_id or ""
            action = "pause" if package.paused else "resume"
            plan.call(
                f"{package.package_id} {action}",
                lambda a, o=order, ln=line, ac=action: a.line_action(o, ln, ac),
            )
            plan.touch(package)
        elif k == "package_budget":
            _set_budget(plan, package, product, float(op.value), op)
            await _check_capacity(state, caller, tenant, plan, package, op.field)
        elif k == "package_impressions":
            goal = int(op.value)
            _set_budget(plan, package, product, round(goal * package.rate / 1000, 2), op)
            package.impressions_goal = goal
            await _check_capacity(state, caller, tenant, plan, package, op.field)
        elif k == "package_bid":
            floor = _floor(product, package)
            if floor is None:
                raise AdcpError(
                    "VALIDATION_ERROR",
                    "This package is sold at a fixed price; it has no bid.",
                    field=op.field,
                )
            if float(op.value) < floor:
                raise AdcpError(
                    "VALIDATION_ERROR",
                    f"bid_price {op.value:.2f} is below the {floor:.2f} floor.",
                    field=op.field,
                    details={"floor_price": floor},
                )
            package.rate = float(op.value)
            package.impressions_goal = int(package.budget / package.rate * 1000)
            plan.line(
                package,
                LineChange(rate=package.rate, impressions_goal=package.impressions_goal),
                f"{package.package_id} bid {package.rate:.2f}",
            )
        elif k == "package_pacing":
            package.pacing = op.value
            plan.line(
                package, LineChange(pacing=op.value), f"{package.package_id} pacing {op.value}"
            )
        elif k == "package_targeting":
            package.targeting = targeting_rules.validate(op.value, product, signal_ids, op.field)
            plan.line(
                package,
                LineChange(targeting=targeting_rules.to_adapter(package.targeting)),
                f"{package.package_id} targeting replaced",
            )
            await _check_capacity(state, caller, tenant, plan, package, op.field)
        elif k == "package_creatives":
            chosen = await creative_library.assignable(
                state, caller, op.value, package.format_ids, op.field
            )
            serving = await creative_library.serving_ids(state, package.package_id)
            dropped = sorted(serving - set(op.value))
            if dropped:
                raise AdcpError(
                    "UNSUPPORTED_FEATURE",
                    f"Creative '{dropped[0]}' is already serving and cannot be unassigned; "
                    "pause the package or replace the creative's assets with sync_creatives.",
                    field=op.field,
                )
            package.creative_ids = [c.creative_id for c in chosen]
            plan.creatives[package.package_id] = chosen
            plan.touch(package)
        else:
            raise AdcpError("INVALID_REQUEST", f"Unknown update '{k}'.", field=op.field)
    b.total_budget = round(sum(p.budget for p in plan.packages.values()), 2)
    return plan


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
) -> dict[str, Any]:
    now = now or state.clock.now()
    buy, packages = await load_buy(state, caller, media_buy_id, account_ref)
    if revision is not None and revision != buy.revision:
        raise AdcpError(
            "CONFLICT",
            f"Media buy '{media_buy_id}' is at revision {buy.revision}, not {revision}; "
            "re-read it and retry.",
            field="revision",
            details={"current_revision": buy.revision},
        )
    if not ops:
        raise AdcpError("INVALID_REQUEST", "The request changes nothing.", field="media_buy_id")
    # The hours so far ran under the current settings: close them before anything changes.
    await delivery.close_hours(state, buy, now)
    plan = await plan_ops(state, caller, buy, packages, ops, now)
    async with state.db.session() as session:
        tenant = await session.get(Tenant, buy.tenant_id)
    assert tenant is not None
    push_notifications.validate(tenant, push_notification_config)
    adapter = state.adapters.get(
        tenant, buy.ad_server, account_id=buy.account_id, tool="update_media_buy"
    )
    done: list[str] = []
    failure: AdcpError | None = None
    for index, what, call in plan.calls:
        try:
            await call(adapter)
        except AdcpError as exc:
            failure = exc
            failed_op = index
            break
        done.append(what)
    if failure is not None and not done:
        raise failure
    if failure is not None:
        # Only part of the change reached the ad server: commit the ops it fully took.
        plan = await plan_ops(state, caller, buy, packages, ops[:failed_op], now)
    async with state.db.transaction() as session:
        stored = await session.get(MediaBuy, media_buy_id)
        assert stored is not None
        before = snapshot(stored, packages)
        for name, value in plan.buy.model_dump(exclude={"media_buy_id"}).items():
            setattr(stored, name, value)
        stored.revision = buy.revision + 1
        stored.updated_at = utcnow()
        session.add(stored)
        rows: list[Package] = []
        for package in plan.packages.values():
            row = await session.get(Package, package.package_id)
            assert row is not None
            for name, value in package.model_dump(exclude={"package_id"}).items():
                setattr(row, name, value)
            if package.package_id in plan.creatives:
                await creative_library.replace_assignments(
                    session, buy.tenant_id, row, plan.creatives[package.package_id], "packages"
                )
            row.updated_at = utcnow()
            session.add(row)
            rows.append(row)
        if plan.task is not None:
            session.add(plan.task)
        await audit.record(
            session,
            caller,
            "media_buy.update",
            target_type="media_buy",
            target_id=media_buy_id,
            before=before,
            after=snapshot(stored, rows),
            details={"operations": [op.kind for op in ops], "applied": done},
            success=failure is None,
        )
        await buy_events.updated(
            session,
            stored,
            rows,
            state_before=buy.state,
            task=plan.task,
            push_config=push_notification_config,
        )
        outcome = UpdateOutcome(stored, rows, plan.affected, done, plan.task)
        response = render(outcome)
        if failure is None:
            await completion.mark(session, response)
    if plan.creatives:
        await creative_library.push_pending(state, buy.tenant_id, buy.principal_id)
    if failure is not None:
        raise AdcpError(
            failure.code,
            f"{failure.message} Applied before the failure: {'; '.join(done)}.",
            field=failure.field,
            recovery=failure.recovery,
            details={**failure.details, "applied": done, "revision": buy.revision + 1},
        )
    return response
