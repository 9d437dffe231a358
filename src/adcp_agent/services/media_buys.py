"""Creating media buys, before the ad server is called: validating the request against
the catalog, the account and the buyer's creatives, and checking guaranteed inventory
(``prepare``). ``services.booking`` books what it returns."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import select

from adcp_agent.adapter_protocol import (
    LineSpec,
)
from adcp_agent.db import statements
from adcp_agent.db.models import Principal, Product, Tenant
from adcp_agent.db.models_accounts import Account
from adcp_agent.db.models_creatives import Creative
from adcp_agent.db.models_media import MediaBuy, Package, Task
from adcp_agent.errors import AdcpError
from adcp_agent.services import (
    accounts,
    audience_targeting,
    avails,
    catalog,
    creative_rules,
    industries,
    limits,
    optimization_goals,
    push_notifications,
    reporting_webhooks,
    tenants,
)
from adcp_agent.services import creatives as creative_library
from adcp_agent.services import targeting as targeting_rules
from adcp_agent.services.catalog import lead_days
from adcp_agent.services.identity import Caller, new_id
from adcp_agent.state import AppState

log = logging.getLogger(__name__)

START_GRACE = timedelta(minutes=5)  # clock skew allowance for "start now"

_BUYS = MediaBuy.__table__.c  # type: ignore[attr-defined]
_PACKAGES = Package.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PackageRequest:
    product_id: str
    budget: float
    pricing_option_id: str | None = None
    bid_price: float | None = None
    impressions: int | None = None
    pacing: str | None = None
    targeting: dict[str, Any] | None = None
    creative_ids: Sequence[str] = ()
    format_ids: Sequence[str] | None = None
    buyer_ref: str | None = None
    # A flight of its own inside the buy's (None: the buy's start / end).
    start_time: datetime | None = None
    end_time: datetime | None = None
    paused: bool = False  # booked paused (auction packages)
    optimization_goals: Any = None  # AdCP's, as sent (optimization_goals.validate)


@dataclass(frozen=True)
class CreateRequest:
    packages: Sequence[PackageRequest]
    start_time: datetime | None  # None = as soon as possible
    end_time: datetime
    account: dict[str, Any] | None = None
    brand: dict[str, Any] | None = None
    po_number: str | None = None
    buyer_ref: str | None = None
    advertiser_industry: str | None = None  # AdCP's list; the publisher may block some
    pacing: str = "even"
    total_budget: float | None = None
    total_budget_currency: str | None = None  # 3.1's {amount, currency} form
    paused: bool = False  # booked, and paused at once (3.1's create_media_buy.paused)
    flat_form: bool = False  # seed-003 call: auction packages bid the floor
    push_notification_config: push_notifications.PushNotificationConfig | None = None
    reporting_webhook: reporting_webhooks.ReportingWebhookConfig | None = None
    media_buy_id: str | None = None  # caller-chosen id: sandbox fixtures (seed_media_buy)
    plan_id: str | None = None  # the governance plan (required on governed accounts)
    governance_context: str | None = None  # the envelope's, from the buyer's agent


@dataclass
class Booking:
    buy: MediaBuy
    packages: list[Package]
    task: Task | None = None
    notes: list[str] = field(default_factory=list)
    creatives: dict[str, list[Creative]] = field(default_factory=dict)  # by package_id
    products: dict[str, Product] = field(default_factory=dict)  # by product_id, as validated
    # Guaranteed packages' capacity as checked, confirmed where they are booked.
    holds: list[avails.Hold] = field(default_factory=list)
    # The buyer's advertiser ids on the tenant's ad servers (read with the tenant).
    advertiser_mapping: dict[str, Any] = field(default_factory=dict)
    paused: bool = False  # asked to be booked paused
    # When its creatives are due (the publisher's features.creative_lead_hours).
    creative_deadline: datetime | None = None


Render = Callable[[Booking], dict[str, Any]]


def _field(i: int, name: str) -> str:
    return f"packages[{i}].{name}"


_TENANT_COLUMNS = tuple(c.key for c in Tenant.__table__.c)  # type: ignore[attr-defined]
# The tenant's row and, in the same statement, the buyer's ad-server mappings.
_TENANT = select(
    *Tenant.__table__.c,  # type: ignore[attr-defined]
    select(Principal.platform_mappings)
    .where(
        Principal.principal_id == bindparam("principal"),
        Principal.tenant_id == Tenant.tenant_id,
    )
    .scalar_subquery()
    .label("buyer_mappings"),
).where(Tenant.tenant_id == bindparam("tenant"))


async def _tenant(state: AppState, caller: Caller) -> tuple[Tenant, dict[str, Any]]:
    """The caller's tenant, and the caller's advertiser mappings on its ad servers."""
    params = {"tenant": caller.tenant_id, "principal": caller.principal_id}
    found = await state.db.read(_TENANT, params)
    if not found:
        raise tenants.publisher_gone()
    row = found[0]._asdict()
    tenant = statements.build(Tenant, **{k: row[k] for k in _TENANT_COLUMNS})
    return tenant, dict(row["buyer_mappings"] or {})


def _short_text(value: Any, column: Any, field: str) -> None:
    """A buyer's reference stored in a bounded column (PostgreSQL refuses a longer one)."""
    limit = column.type.length
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise AdcpError(
            "VALIDATION_ERROR",
            f"{field} must be text of at most {limit} characters.",
            field=field,
        )


def _pricing(product: Product, req: PackageRequest, where: str) -> dict[str, Any]:
    options = product.pricing_options
    if req.pricing_option_id is None:
        if len(options) == 1:
            return options[0]
        raise AdcpError(
            "INVALID_REQUEST",
            f"Product '{product.product_id}' has several pricing options; choose one.",
            field=f"{where}.pricing_option_id",
            details={"pricing_option_ids": [o["pricing_option_id"] for o in options]},
        )
    for option in options:
        if option["pricing_option_id"] == req.pricing_option_id:
            return option
    raise AdcpError(
        "INVALID_REQUEST",
        f"Pricing option '{req.pricing_option_id}' is not offered on '{product.product_id}'.",
        field=f"{where}.pricing_option_id",
        suggestion="Use a pricing_option_id from get_products.",
    )


def _rate(option: dict[str, Any], req: PackageRequest, where: str, flat: bool, notes: list[str]):
    price, fixed = avails.rate_of(option)
    if fixed:
        if req.bid_price is not None and req.bid_price != price:
            raise AdcpError(
                "VALIDATION_ERROR",
                f"This pricing option is a fixed {price:.2f} {option.get('currency', 'USD')} "
                "CPM; bid_price does not apply.",
                field=f"{where}.bid_price",
            )
        return price
    if req.bid_price is None:
        if not flat:
            raise AdcpError(
                "INVALID_REQUEST",
                f"Auction pricing needs a bid_price of at least the {price:.2f} floor.",
                field=f"{where}.bid_price",
            )
        notes.append(f"{where} bids the floor price {price:.2f} (no bid was given).")
        return price
    if req.bid_price < price:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"bid_price {req.bid_price:.2f} is below the {price:.2f} floor.",
            field=f"{where}.bid_price",
            details={"floor_price": price},
        )
    return limits.cpm(float(req.bid_price), f"{where}.bid_price")


async def prepare(
    state: AppState, caller: Caller, req: CreateRequest, *, now: datetime | None = None
) -> tuple[Tenant, Account, Booking]:
    """Validate a create request completely, before anything is written."""
    principal_id = caller.require_principal()
    now = now or state.clock.now()
    tenant, advertiser_mapping = await _tenant(state, caller)
    industries.check(req.advertiser_industry, tenant.features, "advertiser_industry")
    account = await accounts.resolve(state.db, caller, req.account)
    start = req.start_time or now
    if start < now - START_GRACE:
        raise AdcpError(
            "VALIDATION_ERROR",
            "start_time is in the past.",
            field="start_time",
            suggestion="Use a future time, or 'asap'.",
        )
    if req.end_time <= start:
        raise AdcpError("VALIDATION_ERROR", "end_time must be after start_time.", field="end_time")
    if not req.packages:
        raise AdcpError(
            "INVALID_REQUEST", "A media buy needs at least one package.", field="packages"
        )
    _short_text(req.po_number, _BUYS.po_number, "po_number")
    _short_text(req.buyer_ref, _BUYS.buyer_ref, "buyer_ref")
    cat = await catalog.tenant_catalog(state.db, caller)
    products = cat.products_by_id
    signal_ids = set(cat.signals)
    buy_id = req.media_buy_id or new_id("mb")
    notes: list[str] = []
    creatives_by_package: dict[str, list[Creative]] = {}
    packages: list[Package] = []
    for i, preq in enumerate(req.packages):
        package, assigned = await build_package(
            state,
            caller,
            preq,
            f"packages[{i}]",
            products=products,
            signal_ids=signal_ids,
            media_buy_id=buy_id,
            start=start,
            end=req.end_time,
            now=now,
            currency=req.total_budget_currency,
            currency_field="total_budget.currency",
            currency_of="total_budget",
            default_pacing=req.pacing,
            flat=req.flat_form,
            notes=notes,
        )
        packages.append(package)
        creatives_by_package[package.package_id] = assigned
    total = round(sum(p.budget for p in packages), 2)
    if req.total_budget is not None and abs(req.total_budget - total) > 0.01:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"total_budget {req.total_budget:,.2f} differs from the packages' sum {total:,.2f}.",
            field="total_budget",
        )
    await audience_targeting.check_targeting(
        state.db,
        caller.tenant_id,
        account.account_id,
        [(p.targeting, f"packages[{i}].targeting_overlay") for i, p in enumerate(packages)],
    )
    # Capacity: guaranteed packages must fit — together with the buy's earlier
    # packages of the same product; auction packages may under-deliver.
    holds: list[avails.Hold] = []
    taken: dict[str, int] = {}  # by product: the goals of the packages checked so far
    for i, package in enumerate(packages):
        runs_from, runs_to = package.start_time or start, package.end_time or req.end_time
        [avail] = await avails.check(
            state,
            caller,
            tenant,
            [package.product_id],
            runs_from,
            runs_to,
            package.targeting,
            sandbox=account.sandbox,
            account_id=account.account_id,
        )
        siblings = taken.get(package.product_id, 0) if package.guaranteed else 0
        short = bool(package.impressions_goal) and (
            (package.impressions_goal or 0) + siblings > avail.available_impressions
        )
        if package.guaranteed and short:
            raise avails.unavailable(
                package.product_id,
                avail.available_impressions,
                (package.impressions_goal or 0) + siblings,
                _field(i, "budget"),
            )
        if package.guaranteed and package.impressions_goal:
            taken[package.product_id] = siblings + package.impressions_goal
            holds.append(
                avails.Hold(
                    tenant_id=caller.tenant_id,
                    product_id=package.product_id,
                    sandbox=account.sandbox,
                    start=runs_from,
                    end=runs_to,
                    avail=avail,
                    goal=package.impressions_goal,
                    field=_field(i, "budget"),
                    siblings=siblings,
                )
            )
        elif short:
            notes.append(
                f"packages[{i}] may under-deliver: about {avail.available_impressions:,} "
                "impressions are available in this flight."
            )
    buy = statements.build(
        MediaBuy,
        media_buy_id=buy_id,
        tenant_id=caller.tenant_id,
        principal_id=principal_id,
        account_id=account.account_id,
        buyer_ref=req.buyer_ref,
        brand=req.brand,
        po_number=req.po_number,
        advertiser_industry=req.advertiser_industry,
        plan_id=req.plan_id,
        governance_context=req.governance_context,
        state="provisioning",
        guaranteed=any(p.guaranteed for p in packages),
        start_time=start,
        end_time=req.end_time,
        total_budget=total,
        pacing=req.pacing,
        ad_server=state.adapters.choose(tenant, sandbox=account.sandbox),
        sandbox=account.sandbox,
    )
    optimization_goals.check_ad_server(
        buy.ad_server, [(p, f"packages[{i}]") for i, p in enumerate(packages)]
    )
    if req.paused and buy.guaranteed:
        raise AdcpError(
            "UNSUPPORTED_FEATURE",
            "A media buy that awaits the publisher's approval cannot be created paused; "
            "pause it with update_media_buy once it is approved. Nothing was booked.",
            field="paused",
        )
    booking = Booking(
        buy,
        packages,
        None,
        notes,
        creatives_by_package,
        products,
        holds,
        advertiser_mapping,
        paused=req.paused,
        creative_deadline=creative_rules.creative_deadline(tenant.features, start),
    )
    return tenant, account, booking


async def build_package(
    state: AppState,
    caller: Caller,
    preq: PackageRequest,
    where: str,
    *,
    products: dict[str, Product],
    signal_ids: set[str],
    media_buy_id: str,
    start: datetime,
    end: datetime,
    now: datetime,
    currency: str | None,
    currency_field: str,
    currency_of: str,
    default_pacing: str,
    flat: bool = False,
    notes: list[str],
    package_id: str | None = None,
) -> tuple[Package, list[Creative]]:
    """One requested package validated against the catalog (``where`` names it in
    errors: ``packages[0]``), as a row of ``media_buy_id`` running from ``start`` to
    ``end`` (or a flight of its own inside them), and the creatives assigned to it.
    ``currency``: the one it must be priced in, if any."""
    product = products.get(preq.product_id)
    if product is None:
        raise AdcpError(
            "PRODUCT_NOT_FOUND",
            f"Product '{preq.product_id}' was not found.",
            field=f"{where}.product_id",
            suggestion="Call get_products for valid ids.",
        )
    _short_text(preq.buyer_ref, _PACKAGES.buyer_ref, f"{where}.buyer_ref")
    option = _pricing(product, preq, where)
    priced_in = option.get("currency", "USD")
    if currency not in (None, priced_in):
        raise AdcpError(
            "VALIDATION_ERROR",
            f"{currency_of} is in {currency}; '{product.product_id}' is priced in {priced_in}.",
            field=currency_field,
        )
    rate = _rate(option, preq, where, flat, notes)
    floor = float(option.get("min_spend") or 0)
    limits.amount(preq.budget, f"{where}.budget")
    if preq.budget <= 0 or preq.budget < floor:
        raise AdcpError(
            "BUDGET_TOO_LOW",
            f"Budget {preq.budget:,.2f} is below the {floor:,.2f} minimum for "
            f"'{product.product_id}'.",
            field=f"{where}.budget",
            details={"minimum_budget": floor, "currency": priced_in},
        )
    own_start, own_end = _own_flight(preq, where, start, end)
    start = own_start or start
    earliest = now + timedelta(days=lead_days(product))
    if start.date() < earliest.date():
        raise AdcpError(
            "VALIDATION_ERROR",
            f"'{product.product_id}' needs {lead_days(product)} days of lead time; the "
            f"earliest start is {earliest.date().isoformat()}.",
            field=f"{where}.start_time"
            if own_start
            else "start_time"
            if where.startswith("packages[")
            else f"{where}.product_id",
        )
    overlay = targeting_rules.validate(
        preq.targeting, product, signal_ids, f"{where}.targeting_overlay"
    )
    formats = list(preq.format_ids or product.format_ids)
    unknown = sorted(set(formats) - set(product.format_ids))
    if unknown:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"'{product.product_id}' does not accept format(s) {', '.join(unknown)}.",
            field=f"{where}.format_ids",
        )
    assigned = await creative_library.assignable(
        state, caller, preq.creative_ids, formats, f"{where}.creative_assignments"
    )
    implied = int(preq.budget / rate * 1000)
    if preq.impressions is not None and preq.impressions > implied:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"{preq.impressions:,} impressions cost more than the {preq.budget:,.2f} budget "
            f"at {rate:.2f} CPM ({implied:,} max).",
            field=f"{where}.impressions",
        )
    package = statements.build(
        Package,
        package_id=package_id or new_id("pkg"),
        media_buy_id=media_buy_id,
        tenant_id=caller.tenant_id,
        product_id=product.product_id,
        buyer_ref=preq.buyer_ref,
        pricing_option_id=option["pricing_option_id"],
        pricing_model=option.get("pricing_model", "cpm"),
        rate=rate,
        guaranteed=product.delivery_type == "guaranteed",
        budget=float(preq.budget),
        impressions_goal=preq.impressions or implied,
        pacing=preq.pacing or default_pacing,
        targeting=overlay,
        format_ids=formats,
        creative_ids=[c.creative_id for c in assigned],
        start_time=own_start,
        end_time=own_end,
        paused=preq.paused,
        optimization_goals=optimization_goals.validate(preq.optimization_goals, product, where),
    )
    optimization_goals.require_meetable(package, where, "Nothing was booked.")
    if preq.paused and package.guaranteed:
        raise AdcpError(
            "UNSUPPORTED_FEATURE",
            "A guaranteed package awaits the publisher's approval and cannot be booked "
            "paused; pause it with update_media_buy once it is approved.",
            field=f"{where}.paused",
        )
    return package, assigned


def _own_flight(
    preq: PackageRequest, where: str, start: datetime, end: datetime
) -> tuple[datetime | None, datetime | None]:
    """A package's own start and end inside ``start``-``end`` (None where it runs the
    buy's), or AdcpError naming what falls outside."""
    own_start = preq.start_time if preq.start_time and preq.start_time != start else None
    own_end = preq.end_time if preq.end_time and preq.end_time != end else None
    if own_start is not None and not start <= own_start < end:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"A package's start_time must fall within its buy's flight ({start.isoformat()} "
            f"to {end.isoformat()}).",
            field=f"{where}.start_time",
        )
    if own_end is not None and not start < own_end <= end:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"A package's end_time must fall within its buy's flight ({start.isoformat()} "
            f"to {end.isoformat()}).",
            field=f"{where}.end_time",
        )
    if (own_start or start) >= (own_end or end):
        raise AdcpError(
            "VALIDATION_ERROR", "The package's end_time is not after its start.",
            field=f"{where}.end_time",
        )  # fmt: skip
    return own_start, own_end


def line_spec(package: Package, buy: MediaBuy, product: Product) -> LineSpec:
    return LineSpec(
        package_id=package.package_id,
        product_id=package.product_id,
        name=f"{buy.media_buy_id} {product.name}",
        guaranteed=package.guaranteed,
        pricing_model=package.pricing_model,
        rate=package.rate,
        currency=buy.currency,
        budget=package.budget,
        impressions_goal=package.impressions_goal,
        start=package.start_time or buy.start_time,
        end=package.end_time or buy.end_time,
        pacing=package.pacing,  # type: ignore[arg-type]
        targeting=targeting_rules.to_adapter(package.targeting, buy.account_id),
        format_ids=tuple(package.format_ids),
        implementation_config=product.implementation_config,
    )


def snapshot(buy: MediaBuy, packages: Sequence[Package]) -> dict[str, Any]:
    """The audit-log view of a buy: enough to see what changed."""
    return {
        "state": buy.state,
        "start_time": buy.start_time.isoformat(),
        "end_time": buy.end_time.isoformat(),
        "total_budget": buy.total_budget,
        "daily_cap": buy.daily_cap,
        "archived": buy.archived,
        "packages": {
            p.package_id: {
                "product_id": p.product_id,
                "budget": p.budget,
                "impressions_goal": p.impressions_goal,
                "paused": p.paused,
                "rate": p.rate,
                "targeting": p.targeting,
                "bid_adjustments": p.bid_adjustments,
                "canceled": p.canceled_at is not None,
            }
            for p in packages
        },
    }
