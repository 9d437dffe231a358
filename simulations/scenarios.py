"""What a simulated buyer wants: the scenarios (briefs, flight length, how many auction
packages, when to give feedback and pause) and each buyer's seeded plan. Everything the
buyer decides comes from here, so one seed gives one set of decisions."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

BriefRole = Literal["guaranteed", "auction", "explore"]
BRANDS = (
    "acme.example",
    "globex.example",
    "initech.example",
    "umbrella.example",
    "hooli.example",
    "stark.example",
    "wayne.example",
    "tyrell.example",
)


@dataclass(frozen=True)
class Brief:
    """A get_products call. The guaranteed and auction briefs choose what is bought; the
    others are the looking around a real buyer does first."""

    role: BriefRole
    text: str
    format_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    days: int
    briefs: tuple[Brief, ...]
    signal_spec: str
    auction_packages: int
    # Guaranteed budget as a multiple of the product's minimum spend.
    guaranteed_factor: tuple[float, float]
    auction_budget: tuple[float, float]
    # Where in the flight (0-1) the buyer gives feedback, pauses and resumes.
    feedback_at: tuple[float, ...]
    pause_at: float
    lead_days: int = 3

    def schedule(self, days: int) -> Schedule:
        """Flight days (1-based) of the buyer's mid-flight actions, for any length >= 3:
        feedback first, then a pause for one day, resumed before the last day."""
        feedback = tuple(sorted({min(days - 2, max(1, round(f * days))) for f in self.feedback_at}))
        pause = min(days - 2, max(feedback[0], round(self.pause_at * days)))
        return Schedule(
            feedback_days=feedback, pause_day=pause, resume_day=pause + 1, add_day=pause + 1
        )


@dataclass(frozen=True)
class Schedule:
    """Actions happen at the end of the named day, after reading its delivery: the day
    after ``pause_day`` is the paused one; a package added on ``add_day`` runs from the
    next."""

    feedback_days: tuple[int, ...]
    pause_day: int
    resume_day: int
    # The buyer adds a package to its auction buy (a second line of its first product,
    # with the same creative) and it runs the rest of the flight.
    add_day: int


_COMMON_BRIEFS = (
    Brief("guaranteed", "premium video for sports fans in the US, guaranteed", ("video",)),
    Brief("auction", "efficient display banners at scale for performance"),
    Brief("explore", "audio spots for commuters on streaming radio"),
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="full",
            description="Two weeks: discovery with four briefs, a guaranteed CTV/video buy "
            "and a two-package auction buy, feedback at a third and two thirds of the flight.",
            days=14,
            briefs=(
                *_COMMON_BRIEFS,
                Brief("explore", "homepage takeover for a product launch, awareness"),
            ),
            signal_spec="sports fans",
            auction_packages=2,
            guaranteed_factor=(1.0, 1.3),
            auction_budget=(1500.0, 3000.0),
            feedback_at=(0.34, 0.67),
            pause_at=0.5,
        ),
        Scenario(
            name="quick",
            description="Three days, the whole journey in a few seconds (used by the tests).",
            days=3,
            briefs=_COMMON_BRIEFS,
            signal_spec="sports fans",
            auction_packages=2,
            guaranteed_factor=(1.0, 1.1),
            auction_budget=(1000.0, 1500.0),
            feedback_at=(0.34,),
            pause_at=0.34,
        ),
        Scenario(
            name="auction",
            description="Ten days, four auction packages: feedback from the buyer's own "
            "conversion data moves spend toward the packages that perform.",
            days=10,
            briefs=(
                *_COMMON_BRIEFS,
                Brief("explore", "mobile app full screen placements with high attention"),
            ),
            signal_spec="sports fans",
            auction_packages=4,
            guaranteed_factor=(1.0, 1.2),
            auction_budget=(1500.0, 2500.0),
            feedback_at=(0.3,),
            pause_at=0.7,
        ),
    )
}


@dataclass(frozen=True)
class BuyerPlan:
    """One buyer's seeded decisions. ``true_performance`` is the buyer's private view of
    how well each auction package converts: the basis of its feedback."""

    brand: str
    guaranteed_factor: float
    auction_budgets: tuple[float, ...]
    bid_multipliers: tuple[float, ...]
    true_performance: tuple[float, ...]
    brand_lift_percent: float


def plan_for(scenario: Scenario, seed: int, buyer: int) -> BuyerPlan:
    rng = random.Random(f"{seed}|{scenario.name}|{buyer}")
    n = scenario.auction_packages
    lo, hi = scenario.auction_budget
    return BuyerPlan(
        brand=BRANDS[(seed + buyer) % len(BRANDS)],
        guaranteed_factor=round(rng.uniform(*scenario.guaranteed_factor), 2),
        auction_budgets=tuple(round(rng.uniform(lo, hi), -2) for _ in range(n)),
        bid_multipliers=tuple(round(rng.uniform(1.15, 1.5), 2) for _ in range(n)),
        true_performance=tuple(round(rng.uniform(0.5, 1.6), 2) for _ in range(n)),
        brand_lift_percent=round(rng.uniform(2.0, 9.0), 1),
    )
