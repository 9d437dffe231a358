"""The mock ad server's delivery model: what one package delivers in one hour.

Pure and deterministic: the same inputs and seed give the same hour, so a simulation
replays exactly. Per hour a package is offered the product's hourly supply (daily
impressions × fill rate × targeting breadth, shaped by a day/night curve, ±15% noise),
split across device types. Auction packages win a share of it that grows with their bid
over the floor (device bid adjustments change the bid per device) and pay a clearing
price between floor and bid; guaranteed packages take what they need at their fixed
price. Demand follows the pacing curve (even / front_loaded) or takes everything
(asap), limited by the remaining budget, the daily cap and the impressions goal.
Performance feedback arrives as ``weight``: above 1 the package paces ahead of its
curve and bids harder, below 1 it is held back.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from adcp_agent.services.pacing import elapsed_fraction, expected_share

HOUR = timedelta(hours=1)
# Share of a day's traffic per UTC hour (mean 1.0): quiet nights, busy evenings.
DIURNAL = (
    0.35, 0.25, 0.2, 0.2, 0.25, 0.4, 0.7, 1.0, 1.2, 1.25, 1.25, 1.3,
    1.35, 1.3, 1.25, 1.25, 1.3, 1.4, 1.55, 1.65, 1.6, 1.4, 1.0, 0.65,
)  # fmt: skip
_DIURNAL_SCALE = 24 / sum(DIURNAL)
DEVICE_MIX: dict[str, dict[str, float]] = {
    "ctv": {"ctv": 1.0},
    "default": {"desktop": 0.35, "mobile": 0.5, "tablet": 0.15},
}
MAX_WIN = 0.95


def device_mix(
    channels: list[str], targeted: list[str] | None, excluded: list[str] | None = None
) -> dict[str, float]:
    """Shares of the product's traffic by device, restricted to the targeted devices
    and without the excluded ones."""
    base = DEVICE_MIX["ctv"] if channels and set(channels) <= {"ctv"} else DEVICE_MIX["default"]
    return {
        d: share
        for d, share in base.items()
        if (not targeted or d in targeted) and d not in (excluded or ())
    }


def win_rate(bid: float, floor: float) -> float:
    """Share of auctions won: nothing below the floor, ~5% at it, ~37% at +15%,
    ~75% at +50%, capped at 95%."""
    if bid < floor:
        return 0.0
    return min(MAX_WIN, 0.05 + 0.9 * (1 - math.exp(-3 * (bid / floor - 1))))


def clearing_price(bid: float, floor: float) -> float:
    return floor + 0.6 * max(bid - floor, 0.0)


@dataclass(frozen=True)
class PackageModel:
    """Everything about a package that shapes its delivery, resolved once per run."""

    package_id: str
    guaranteed: bool
    pricing_model: str  # cpm | vcpm | cpc | cpcv | cpv | flat_rate
    rate: float  # fixed price, or the bid
    floor: float | None  # auction floor; None for fixed prices
    budget: float
    impressions_goal: int | None
    pacing: str
    daily_impressions: float  # product supply after fill rate and targeting breadth
    devices: Mapping[str, float]  # traffic share per targeted device
    bid_adjustments: Mapping[str, float] = field(default_factory=dict)  # percent
    ctr: float = 0.0
    completion_rate: float = 0.0
    viewability: float = 1.0
    day_cap: float | None = None  # this package's share of the buy's daily cap
    week_hours: frozenset[int] | None = None  # daypart targets: hours of the week served


@dataclass
class Progress:
    """Running totals while hours are simulated in order."""

    spend: float = 0.0
    impressions: int = 0
    day: date | None = None
    day_spend: float = 0.0

    def add(self, hour: datetime, out: HourOutput) -> None:
        if self.day != hour.date():
            self.day, self.day_spend = hour.date(), 0.0
        self.spend += out.spend
        self.impressions += out.impressions
        self.day_spend += out.spend


@dataclass(frozen=True)
class HourOutput:
    impressions: int = 0
    clicks: int = 0
    completions: int = 0
    spend: float = 0.0


NOTHING = HourOutput()


def _unit_cost(model: PackageModel, price: float) -> float:
    """Expected spend per impression at ``price`` under the package's pricing model."""
    kind = model.pricing_model
    if kind == "vcpm":
        return price / 1000 * model.viewability
    if kind == "cpc":
        return price * model.ctr
    if kind in ("cpcv", "cpv"):
        return price * model.completion_rate
    return price / 1000


def simulate_hour(
    model: PackageModel,
    progress: Progress,
    *,
    hour: datetime,
    start: datetime,
    end: datetime,
    seed: str,
    weight: float = 1.0,
) -> HourOutput:
    lo, hi = max(hour, start), min(hour + HOUR, end)
    share_of_hour = max((hi - lo).total_seconds(), 0.0) / 3600
    remaining = round(model.budget - progress.spend, 6)
    goal_left = (
        model.impressions_goal - progress.impressions if model.impressions_goal else math.inf
    )
    if share_of_hour <= 0 or remaining <= 0.005 or goal_left <= 0:
        return NOTHING
    if model.week_hours is not None and hour.weekday() * 24 + hour.hour not in model.week_hours:
        return NOTHING  # outside the package's daypart targets
    rng = random.Random(seed)
    supply = (
        model.daily_impressions
        / 24
        * DIURNAL[hour.hour]
        * _DIURNAL_SCALE
        * share_of_hour
        * rng.uniform(0.85, 1.15)
    )
    offered = cost = priced = 0.0
    for device, share in model.devices.items():
        if model.floor is None:
            won, price = 1.0, model.rate
        else:
            bid = model.rate * (1 + model.bid_adjustments.get(device, 0.0) / 100)
            won = min(MAX_WIN, win_rate(bid, model.floor) * weight)
            price = clearing_price(bid, model.floor)
        n = supply * share * won
        offered += n
        cost += n * _unit_cost(model, price)
        priced += n * price
    if offered < 1:
        return NOTHING
    unit, price = cost / offered, priced / offered
    if model.pricing_model == "flat_rate":
        wanted = min(remaining, model.budget * share_of_hour * 3600 / (end - start).total_seconds())
        return _emit(model, offered, wanted, rng, unit=0.0, price=price, remaining=remaining)
    if model.pacing == "asap":
        wanted = remaining
    else:
        # Feedback changes the pace from now on (the hour's step of the curve times the
        # weight); it never rewrites the plan behind, so a re-weighted package neither
        # spikes to "catch up" nor stalls. A shortfall against the plan (supply ran short)
        # is made up a quarter per hour, unless feedback is holding the package back.
        # Over the hours it serves (its daypart targets), if not all of them.
        t_lo = elapsed_fraction(start, end, lo, model.week_hours)
        t_hi = elapsed_fraction(start, end, hi, model.week_hours)
        step = model.budget * (
            expected_share(model.pacing, t_hi) - expected_share(model.pacing, t_lo)
        )
        behind = model.budget * expected_share(model.pacing, t_hi) - progress.spend - step
        catch_up = 0.25 * behind if behind > 0 and weight >= 1.0 else 0.0
        wanted = (step * weight + catch_up) * rng.uniform(0.9, 1.1)
    if model.day_cap is not None:
        spent_today = progress.day_spend if progress.day == hour.date() else 0.0
        wanted = min(wanted, model.day_cap - spent_today)
    wanted = min(wanted, remaining)
    if wanted <= 0:
        return NOTHING
    impressions = min(offered, wanted / unit if unit > 0 else offered, goal_left)
    return _emit(model, impressions, wanted, rng, unit=unit, price=price, remaining=remaining)


def _emit(
    model: PackageModel,
    impressions_f: float,
    wanted: float,
    rng: random.Random,
    *,
    unit: float,
    price: float,
    remaining: float,
) -> HourOutput:
    impressions = int(impressions_f)
    if impressions <= 0:
        return NOTHING
    clicks = round(impressions * model.ctr * rng.uniform(0.8, 1.2))
    completions = min(
        impressions, round(impressions * model.completion_rate * rng.uniform(0.97, 1.03))
    )
    if model.pricing_model == "flat_rate":
        spend = wanted
    elif model.pricing_model == "cpc":
        spend = clicks * price
    elif model.pricing_model in ("cpcv", "cpv"):
        spend = completions * price
    else:
        spend = impressions * unit
    # Never a cent over budget: round down, and cap at what is left.
    spend = math.floor(min(spend, remaining) * 10_000) / 10_000
    return HourOutput(impressions, clicks, completions, spend)
