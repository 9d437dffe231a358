"""Planning a change to a booked media buy: every ``Op`` is validated against working
copies of the buy and its packages, which collect the ad-server calls that realise them
and the capacity each guaranteed package will hold. No side effects (``plan_ops``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adcp_agent.adapter_protocol import AdServerAdapter, LineChange
from adcp_agent.db.models import Product, Tenant
from adcp_agent.db.models_creatives import Creative
from adcp_agent.db.models_media import MediaBuy, Package, Task, package_flight
from adcp_agent.errors import AdcpError
from adcp_agent.services import (
    audience_targeting,
    avails,
    buy_state,
    catalog,
    limits,
    media_buys,
    optimization_goals,
    update_flights,
)
from adcp_agent.services import creatives as creative_library
from adcp_agent.services import targeting as targeting_rules
from adcp_agent.services.identity import Caller, new_id
from adcp_agent.state import AppState

AdapterCall = Callable[[AdServerAdapter], Awaitable[None]]


@dataclass(frozen=True)
class Op:
    kind: str
    field: str
    package_id: str | None = None
    value: Any = None


class Plan:
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
        # package_id -> the capacity its guaranteed package was checked to have
        self.holds: dict[str, avails.Hold] = {}
        self.check_capacity = True
        # Packages added to the buy (new_packages), with the creatives assigned to each.
        self.added: list[Package] = []
        self.added_creatives: dict[str, list[Creative]] = {}

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
        if package.canceled_at is not None:
            raise AdcpError(
                "INVALID_STATE",
                f"Package '{package.package_id}' was canceled; it cannot be changed.",
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

    def line_action(self, package: Package, action: str, what: str) -> None:
        order, line = self.buy.external_order_id or "", package.external_line_id or ""
        self.call(what, lambda a: a.line_action(order, line, action))  # type: ignore[arg-type]
        self.touch(package)

    def order(self, action: str, what: str) -> None:
        order = self.buy.external_order_id or ""
        self.call(what, lambda a: a.order_action(order, action))  # type: ignore[arg-type]


async def _context(state: AppState, caller: Caller) -> tuple[dict[str, Product], set[str]]:
    """The products and signal ids to validate against, from the catalog as
    ``catalog.tenant_catalog`` keeps it (the one create_media_buy validates with)."""
    cat = await catalog.tenant_catalog(state.db, caller)
    return cat.products_by_id, set(cat.signals)


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
    state: AppState, caller: Caller, tenant: Tenant, plan: Plan, package: Package, field: str
) -> None:
    if not plan.check_capacity or not package.guaranteed or not package.impressions_goal:
        return
    runs_from, runs_to = package_flight(package, plan.buy)
    [avail] = await avails.check(
        state,
        caller,
        tenant,
        [package.product_id],
        runs_from,
        runs_to,
        package.targeting,
        exclude_media_buy=plan.buy.media_buy_id,
        sandbox=plan.buy.sandbox,
        account_id=plan.buy.account_id,
    )
    siblings = _siblings(plan, package)
    if package.impressions_goal + siblings > avail.available_impressions:
        raise avails.unavailable(
            package.product_id,
            avail.available_impressions,
            package.impressions_goal + siblings,
            field,
        )
    # The package's latest check is what its commit confirms (media_updates.claim).
    plan.holds[package.package_id] = avails.Hold(
        tenant_id=plan.buy.tenant_id,
        product_id=package.product_id,
        sandbox=plan.buy.sandbox,
        start=runs_from,
        end=runs_to,
        avail=avail,
        goal=package.impressions_goal,
        field=field,
        exclude_media_buy=plan.buy.media_buy_id,
        siblings=siblings,
    )


def _siblings(plan: Plan, package: Package) -> int:
    """What the buy's other guaranteed packages of ``package``'s product need, as the
    plan has them: they share the inventory (their stored rows are left out of the
    reservation sum the check runs)."""
    return sum(
        p.impressions_goal or 0
        for p in (*plan.packages.values(), *plan.added)
        if p is not package
        and p.guaranteed
        and p.canceled_at is None
        and p.product_id == package.product_id
    )


def _set_budget(plan: Plan, package: Package, product: Product, budget: float, op: Op) -> None:
    floor = _min_spend(product, package)
    limits.amount(budget, op.field)
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


def _mark_canceled(row: MediaBuy | Package, op: Op, now: datetime) -> None:
    """When, by whom (the buyer unless the op says otherwise) and why ``row`` was
    canceled."""
    who = op.value or {}
    row.canceled_at, row.canceled_by = now, who.get("by", "buyer")
    row.cancellation_reason = who.get("reason")


async def plan_ops(
    state: AppState,
    caller: Caller,
    buy: MediaBuy,
    packages: list[Package],
    ops: Sequence[Op],
    now: datetime,
    *,
    tenant: Tenant,
    check_capacity: bool = True,
) -> Plan:
    """Validate every op against working copies; no side effects. ``check_capacity=
    False`` for what the ad server already took: it is booked, whatever is left."""
    products, signal_ids = await _context(state, caller)
    plan = Plan(buy, packages)
    plan.check_capacity = check_capacity
    b = plan.buy
    for index, op in enumerate(ops):
        plan.op_index = index
        k = op.kind
        if k in ("pause", "resume", "cancel", "archive"):
            buy_state.require(b, k, now, op.field)
            b.state = {"pause": "paused", "resume": "live", "cancel": "canceled"}.get(k, b.state)
            b.archived = b.archived or k == "archive"
            if k == "cancel":
                _mark_canceled(b, op, now)
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
            # A rejected buy held no inventory: what it asks for again may be sold.
            for package in plan.packages.values():
                await _check_capacity(state, caller, tenant, plan, package, op.field)
            continue
        buy_state.require(b, "update", now, op.field)
        if k == "add_package":
            await _add_package(state, caller, tenant, plan, op, now, products, signal_ids)
            continue
        if k == "flight":
            update_flights.move_start(plan, op, now, products)
            for package in plan.packages.values():
                await _check_capacity(state, caller, tenant, plan, package, op.field)
            continue
        if k == "end_time":
            end: datetime = op.value
            if end <= max(now, b.start_time):
                raise AdcpError(
                    "VALIDATION_ERROR",
                    "end_time must be in the future and after start_time.",
                    field=op.field,
                )
            update_flights.move_end(plan, op, end)
            for package in plan.packages.values():
                await _check_capacity(state, caller, tenant, plan, package, op.field)
            continue
        if k == "daily_cap":
            amount = limits.amount(float(op.value), op.field, "daily cap")
            if amount <= 0:
                raise AdcpError("VALIDATION_ERROR", "A daily cap must be positive.", field=op.field)
            b.daily_cap = amount
            running = [p for p in plan.packages.values() if p.canceled_at is None]
            total = sum(p.budget for p in running) or 1.0
            for package in running:
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
                    LineChange(targeting=targeting_rules.to_adapter(overlay, b.account_id)),
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
        if k == "package_cancel":
            # It delivers no more: its line paused for good, and a guaranteed package's
            # goal released (its reserving rate follows the goal).
            if all(
                p.canceled_at is not None or p.package_id == package.package_id
                for p in plan.packages.values()
            ):
                raise AdcpError(
                    "INVALID_REQUEST",
                    f"Package '{package.package_id}' is the buy's last running package.",
                    field=op.field,
                    suggestion="Cancel the media buy instead (canceled: true).",
                )
            package.paused = True
            _mark_canceled(package, op, now)
            if package.guaranteed:
                package.impressions_goal = 0
            plan.line_action(package, "pause", f"{package.package_id} canceled")
        elif k in ("package_pause", "package_resume"):
            package.paused = k == "package_pause"
            action = "pause" if package.paused else "resume"
            plan.line_action(package, action, f"{package.package_id} {action}")
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
            package.rate = limits.cpm(float(op.value), op.field)
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
            await audience_targeting.check_targeting(
                state.db, b.tenant_id, b.account_id, [(package.targeting, op.field)]
            )
            plan.line(
                package,
                LineChange(targeting=targeting_rules.to_adapter(package.targeting, b.account_id)),
                f"{package.package_id} targeting replaced",
            )
            await _check_capacity(state, caller, tenant, plan, package, op.field)
        elif k == "package_goals":
            # Pursued by the simulated ad server from the next hour; no line changes.
            goals = optimization_goals.validate(op.value, product, op.field)
            package.optimization_goals = goals
            optimization_goals.check_ad_server(b.ad_server, [(package, op.field)])
            optimization_goals.require_meetable(package, op.field, "Nothing was changed.")
            plan.touch(package)
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
    every = [*plan.packages.values(), *plan.added]
    b.total_budget = round(sum(p.budget for p in every), 2)
    return plan


async def _add_package(
    state: AppState,
    caller: Caller,
    tenant: Tenant,
    plan: Plan,
    op: Op,
    now: datetime,
    products: dict[str, Product],
    signal_ids: set[str],
) -> None:
    """A package added to the buy (``new_packages``), validated as create_media_buy
    validates its packages. It runs to the buy's end from the buy's start — or, once the
    buy is running, from now. Guaranteed inventory is added only while the buy awaits
    the publisher's approval (who then approves it with the rest)."""
    b = plan.buy
    running = b.state in ("live", "paused") and now > b.start_time
    start = max(now, b.start_time)
    package, assigned = await media_buys.build_package(
        state,
        caller,
        op.value,
        op.field,
        products=products,
        signal_ids=signal_ids,
        media_buy_id=b.media_buy_id,
        start=start,
        end=b.end_time,
        now=now,
        currency=b.currency,
        currency_field=f"{op.field}.pricing_option_id",
        currency_of="The media buy",
        default_pacing=b.pacing,
        notes=[],
        package_id=op.package_id,
    )
    if package.guaranteed and b.state != "pending_approval":
        raise AdcpError(
            "ACTION_NOT_ALLOWED",
            f"'{package.product_id}' is guaranteed inventory, which the publisher approves "
            "before it is booked; it can be added only while a buy awaits that approval. "
            "Nothing was changed.",
            field=f"{op.field}.product_id",
            suggestion="Book it as a new media buy (it goes to the publisher for approval).",
            details={
                "attempted_action": "add_packages",
                "reason": "not_supported_on_buy",
                "currently_available_actions": buy_state.actions(b, now)["available_actions"],
            },
        )
    await audience_targeting.check_targeting(
        state.db, b.tenant_id, b.account_id, [(package.targeting, f"{op.field}.targeting_overlay")]
    )
    optimization_goals.check_ad_server(b.ad_server, [(package, op.field)])
    if running and package.start_time is None:
        package.start_time = start
    # Its capacity counted with the buy's other packages of the product.
    await _check_capacity(state, caller, tenant, plan, package, f"{op.field}.budget")
    spec = media_buys.line_spec(package, b, products[package.product_id])
    order = b.external_order_id or ""

    async def add(adapter: AdServerAdapter) -> None:
        package.external_line_id = await adapter.add_line(order, spec)
        if package.paused:  # asked to be added paused
            await adapter.line_action(order, package.external_line_id, "pause")

    plan.call(f"{package.package_id} added ({package.product_id})", add)
    plan.added.append(package)
    plan.added_creatives[package.package_id] = assigned
    plan.touch(package)
