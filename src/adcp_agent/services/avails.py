"""Availability: what each product can still deliver in a flight, after what existing
buys already reserved. Capacity comes from the tenant's adapter (``forecast``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Float, bindparam, func
from sqlmodel import select

from adcp_agent.adapter_protocol import ForecastRequest
from adcp_agent.db import statements
from adcp_agent.db.models import Product, Tenant
from adcp_agent.db.models_media import Package
from adcp_agent.db.statements import Tx
from adcp_agent.db.types import Greatest, Least
from adcp_agent.errors import AdcpError
from adcp_agent.services import accounts, audience_targeting, audiences, catalog
from adcp_agent.services import targeting as targeting_rules
from adcp_agent.services.catalog import min_spend
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState

# Buys in these states hold inventory — for their guaranteed packages only: an auction
# package bids for impressions it is not promised, so it takes nothing from what others
# can book (as an ad server's forecast counts only guaranteed lines as contending).
RESERVING = ("provisioning", "pending_approval", "live", "paused")


@dataclass(frozen=True)
class Avail:
    product: Product
    price: float  # fixed price, or the floor for auctions
    fixed: bool
    capacity_impressions: int
    reserved_impressions: int
    available_impressions: int  # after reservations and the targeting overlay
    deliverable_budget: float
    min_spend: float
    # The ad server's forecast before the targeting overlay, and the overlay's reach:
    # available_impressions = int(untargeted_available * reach).
    untargeted_available: int
    reach: float


def rate_of(option: dict) -> tuple[float, bool]:
    if option.get("fixed_price") is not None:
        return float(option["fixed_price"]), True
    return float(option["floor_price"]), False


# Every booking and avails check sums this over the product's reserving packages
# (thousands on a busy product): each package carries its buy's flight, state and
# sandbox flag (copied by triggers, migration 0015) and, computed from them by the
# database, its flight in epoch seconds and its reserving rate — impressions goal per
# second of flight while its buy is in a RESERVING state, else NULL (generated columns,
# migration 0017, which spells RESERVING out). Only guaranteed packages count. The
# partial index ix_packages_reserving holds just those numbers for just the reserving
# guaranteed packages (migration 0021), so the database adds up rate x seconds of the
# package's flight inside ours from the index alone. Built once: building and
# cache-keying the statement per call cost more than running it.
_COPY = Package.__table__.c  # type: ignore[attr-defined]  # the database-kept columns
_INSIDE = Least(_COPY.flight_end_s, bindparam("hi", type_=Float)) - Greatest(
    _COPY.flight_start_s, bindparam("lo", type_=Float)
)
_RESERVED = select(func.coalesce(func.sum(_COPY.reserve_rate * _INSIDE), 0.0)).where(
    Package.tenant_id == bindparam("tenant"),
    Package.product_id == bindparam("product"),
    _COPY.buy_sandbox == bindparam("sandbox"),
    _COPY.flight_end_s > bindparam("lo", type_=Float),
    _COPY.flight_start_s < bindparam("hi", type_=Float),
    _COPY.reserve_rate.is_not(None),  # the partial index's condition, spelled as it is
    Package.guaranteed == True,  # noqa: E712 - compiles to the index's "guaranteed = 1"
    Package.media_buy_id != bindparam("exclude"),
)


@dataclass(frozen=True)
class Hold:
    """A guaranteed package's capacity as its request was checked, to confirm where it
    is booked (``confirm``): what others reserved in between comes off."""

    tenant_id: str
    product_id: str
    sandbox: bool
    start: datetime
    end: datetime
    avail: Avail  # what the check found
    goal: int  # what the package needs
    field: str
    exclude_media_buy: str | None = None  # the buy being changed: its own rows do not count
    # What the same buy's other packages of the product need (checked together with
    # this one: a buy's packages share the product's inventory).
    siblings: int = 0

    @property
    def need(self) -> int:
        return self.goal + self.siblings


# Bookings of one product take turns on PostgreSQL: a lock held to the transaction's end.
_TAKE_TURNS = select(func.pg_advisory_xact_lock(func.hashtext(bindparam("key"))))


async def confirm(tx: Tx, holds: Sequence[Hold], *, postgres: bool) -> None:
    """Inside the transaction that books ``holds``' packages, before their rows: the
    impressions others reserved since each was checked come off the forecast found
    then, as a check made now would take them off, and a package that no longer fits
    is PRODUCT_UNAVAILABLE — two concurrent bookings never both take the last
    inventory, and one is refused only if it would have been refused after the other.
    SQLite's write transactions run one at a time; on PostgreSQL the bookings of a
    product wait for each other (an advisory lock until commit), so each sum sees what
    the one before committed."""
    for hold in sorted(holds, key=lambda h: (h.product_id, h.field)):  # one lock order
        key = f"{hold.tenant_id}/{hold.product_id}/{hold.sandbox}"
        if postgres:
            await statements.fetch(tx, _TAKE_TURNS, {"key": key})
        params = _params(
            hold.tenant_id,
            hold.product_id,
            hold.start,
            hold.end,
            hold.exclude_media_buy,
            hold.sandbox,
        )
        [(total,)] = await statements.fetch(tx, _RESERVED, params)
        gained = int(total) - hold.avail.reserved_impressions
        if gained <= 0:
            continue
        # What ``check`` would find now: the forecast less what was booked since (as
        # the mock forecasts; conservative where the ad server counts it already), then
        # the targeting overlay's reach.
        left = int(max(hold.avail.untargeted_available - gained, 0) * hold.avail.reach)
        if hold.need > left:
            raise unavailable(
                hold.product_id,
                left,
                hold.need,
                hold.field,
                because=f"another booking took {gained:,} while this one was checked",
            )


def unavailable(
    product_id: str, left: int, goal: int, field: str, *, because: str | None = None
) -> AdcpError:
    """PRODUCT_UNAVAILABLE for a guaranteed package that does not fit the flight."""
    why = f" ({because})" if because else ""
    return AdcpError(
        "PRODUCT_UNAVAILABLE",
        f"Only {left:,} impressions of '{product_id}' remain in this flight{why}; "
        f"{goal:,} were requested.",
        field=field,
        details={"available_impressions": left},
        suggestion="Lower the budget, widen targeting or change the dates.",
    )


def _params(
    tenant_id: str,
    product_id: str,
    start: datetime,
    end: datetime,
    exclude_media_buy: str | None,
    sandbox: bool,
) -> dict[str, object]:
    return {
        "tenant": tenant_id,
        "product": product_id,
        "sandbox": sandbox,
        "lo": start.timestamp(),
        "hi": end.timestamp(),
        "exclude": exclude_media_buy or "",  # no buy has an empty id
    }


async def reserved(
    state: AppState,
    tenant_id: str,
    product_id: str,
    start: datetime,
    end: datetime,
    *,
    exclude_media_buy: str | None = None,
    sandbox: bool = False,
) -> int:
    """Impressions booked in the flight. Sandbox buys reserve only sandbox inventory (and
    production buys only production inventory): test bookings never shrink real avails."""
    params = _params(tenant_id, product_id, start, end, exclude_media_buy, sandbox)
    [(total,)] = await state.db.read(_RESERVED, params)
    return int(total)


async def check(
    state: AppState,
    caller: Caller,
    tenant: Tenant,
    product_ids: Sequence[str],
    start: datetime,
    end: datetime,
    overlay: dict | None,
    *,
    exclude_media_buy: str | None = None,
    sandbox: bool = False,
    account_id: str | None = None,
) -> list[Avail]:
    """Per product, what is still available in the flight for ``overlay``: the
    audiences it names are ``account_id``'s (the caller's default account's if None)."""
    if end <= start:
        raise AdcpError(
            "VALIDATION_ERROR", "The flight must end after it starts.", field="flight_end_date"
        )
    cat = await catalog.tenant_catalog(state.db, caller)
    products = cat.products_by_id
    coverage = {s.signal_id: s.coverage_percentage for s in cat.signals.values()}
    if any(audiences.in_overlay(overlay)):
        if account_id is None:
            account_id = (await accounts.resolve(state.db, caller, None)).account_id
        await audience_targeting.check_targeting(
            state.db, caller.tenant_id, account_id, [(overlay, "targeting_overlay")]
        )
        async with state.db.reading() as session:
            coverage |= await audience_targeting.coverage(session, caller.tenant_id, account_id)
    # Sandbox traffic forecasts on the mock engine too: it never reaches a real ad server.
    adapter = state.adapters.get(tenant, state.adapters.choose(tenant, sandbox=sandbox))
    out: list[Avail] = []
    for i, pid in enumerate(product_ids):
        product = products.get(pid)
        if product is None or (not product.is_public and not caller.authenticated):
            raise AdcpError(
                "PRODUCT_NOT_FOUND",
                f"Product '{pid}' was not found.",
                field=f"product_ids[{i}]",
                suggestion="Call get_products for valid ids.",
            )
        data = targeting_rules.validate(overlay, product, set(coverage), "targeting_overlay")
        held = await reserved(
            state,
            caller.tenant_id,
            pid,
            start,
            end,
            exclude_media_buy=exclude_media_buy,
            sandbox=sandbox,
        )
        forecast = await adapter.forecast(
            ForecastRequest(
                product_id=pid,
                inventory=product.inventory,
                start=start,
                end=end,
                reserved_impressions=held,
                implementation_config=product.implementation_config,
            )
        )
        factor = targeting_rules.reach_factor(data, product, coverage)
        available = int(forecast.available_impressions * factor)
        price, fixed = rate_of(product.pricing_options[0])
        out.append(
            Avail(
                product=product,
                price=price,
                fixed=fixed,
                capacity_impressions=forecast.capacity_impressions,
                reserved_impressions=held,
                available_impressions=available,
                deliverable_budget=round(available * price / 1000, 2),
                min_spend=min_spend(product),
                untargeted_available=forecast.available_impressions,
                reach=factor,
            )
        )
    return out
