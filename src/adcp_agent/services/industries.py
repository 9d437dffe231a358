"""Advertiser industries (AdCP 3.1 ``enums/advertiser-industry.json``) and the
publisher's category policy: a tenant's ``features.blocked_industries`` lists the
industries it does not sell to — a category blocks its subcategories
(``food_beverage`` blocks ``food_beverage.alcohol``). create_media_buy's
``advertiser_industry`` is checked against it (``check``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adcp_agent.errors import AdcpError

FEATURE = "blocked_industries"
# The protocol's list, copied (the ``adcp`` package is a test dependency only; a test
# keeps the two equal).
INDUSTRIES: tuple[str, ...] = (
    "automotive",
    "automotive.electric_vehicles",
    "automotive.parts_accessories",
    "automotive.luxury",
    "beauty_cosmetics",
    "beauty_cosmetics.skincare",
    "beauty_cosmetics.fragrance",
    "beauty_cosmetics.haircare",
    "cannabis",
    "cpg",
    "cpg.personal_care",
    "cpg.household",
    "dating",
    "education",
    "education.higher_education",
    "education.online_learning",
    "education.k12",
    "energy_utilities",
    "energy_utilities.renewable",
    "fashion_apparel",
    "fashion_apparel.luxury",
    "fashion_apparel.sportswear",
    "finance",
    "finance.banking",
    "finance.insurance",
    "finance.investment",
    "finance.cryptocurrency",
    "food_beverage",
    "food_beverage.alcohol",
    "food_beverage.restaurants",
    "food_beverage.packaged_goods",
    "gambling_betting",
    "gambling_betting.sports_betting",
    "gambling_betting.casino",
    "gaming",
    "gaming.mobile",
    "gaming.console_pc",
    "gaming.esports",
    "government_nonprofit",
    "government_nonprofit.political",
    "government_nonprofit.charity",
    "healthcare",
    "healthcare.pharmaceutical",
    "healthcare.medical_devices",
    "healthcare.wellness",
    "home_garden",
    "home_garden.furniture",
    "home_garden.home_improvement",
    "media_entertainment",
    "media_entertainment.podcasts",
    "media_entertainment.music",
    "media_entertainment.film_tv",
    "media_entertainment.publishing",
    "media_entertainment.live_events",
    "pets",
    "professional_services",
    "professional_services.legal",
    "professional_services.consulting",
    "real_estate",
    "real_estate.residential",
    "real_estate.commercial",
    "recruitment_hr",
    "retail",
    "retail.ecommerce",
    "retail.department_stores",
    "sports_fitness",
    "sports_fitness.equipment",
    "sports_fitness.teams_leagues",
    "technology",
    "technology.software",
    "technology.hardware",
    "technology.ai_ml",
    "telecom",
    "telecom.mobile_carriers",
    "telecom.internet_providers",
    "transportation_logistics",
    "travel_hospitality",
    "travel_hospitality.airlines",
    "travel_hospitality.hotels",
    "travel_hospitality.cruise",
    "travel_hospitality.tourism",
)
_KNOWN = frozenset(INDUSTRIES)


def unknown(values: Any) -> list[str]:
    """The entries of ``values`` that are not AdCP industries (all of it, when it is not
    a list of strings)."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return [repr(values)]
    return [v for v in values if v not in _KNOWN]


def check(industry: str | None, features: Mapping[str, Any], field: str) -> None:
    """VALIDATION_ERROR for an industry AdCP does not define; POLICY_VIOLATION for one
    the publisher blocks (itself or its category)."""
    if industry is None:
        return
    if industry not in _KNOWN:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"'{industry}' is not an AdCP advertiser industry.",
            field=field,
            suggestion="Use a value of AdCP's advertiser-industry list, e.g. 'cpg' or "
            "'finance.insurance'.",
        )
    blocked = set(features.get(FEATURE) or ())
    category = industry.split(".")[0]
    if industry in blocked or category in blocked:
        raise AdcpError(
            "POLICY_VIOLATION",
            f"This publisher does not sell to {industry} advertisers. Nothing was booked.",
            field=field,
            recovery="terminal",
        )
