"""AdCP postal-area targeting (``geo_postal_areas`` / ``geo_postal_areas_exclude``):
``[{country, system, values}]`` (or the deprecated country-fused ``{system: "us_zip",
values}``), normalised to ``"US:10001"``-style codes for the ad servers.

The systems served are the ones whose codes can be checked here — US ZIP and ZIP+4, UK
outward codes, Canadian FSAs, German PLZ — and declared in get_adcp_capabilities. Each
code covers a share of its country's traffic (``SHARE``: one ZIP of ~30,000): a
postal-targeted package reaches that share, an exclusion gives it up.
"""

from __future__ import annotations

import re
from typing import Any

from adcp_agent.errors import AdcpError

# (country, system) -> the form of a code, and the share of the country's traffic one
# code covers (about one over the number of codes).
SYSTEMS: dict[tuple[str, str], tuple[re.Pattern[str], float]] = {
    ("US", "zip"): (re.compile(r"^\d{5}$"), 1 / 30_000),
    ("US", "zip_plus_four"): (re.compile(r"^\d{5}-\d{4}$"), 1 / 3_000_000),
    ("GB", "outward"): (re.compile(r"^[A-Z]{1,2}\d[A-Z\d]?$"), 1 / 2_900),
    ("CA", "fsa"): (re.compile(r"^[A-Z]\d[A-Z]$"), 1 / 1_600),
    ("DE", "plz"): (re.compile(r"^\d{5}$"), 1 / 8_200),
}
LEGACY = {
    "us_zip": ("US", "zip"),
    "us_zip_plus_four": ("US", "zip_plus_four"),
    "gb_outward": ("GB", "outward"),
    "ca_fsa": ("CA", "fsa"),
    "de_plz": ("DE", "plz"),
}
KEYS = ("geo_postal_areas", "geo_postal_areas_exclude")


def capabilities() -> dict[str, list[str]]:
    """get_adcp_capabilities' ``execution.targeting.geo_postal_areas``."""
    out: dict[str, list[str]] = {}
    for country, system in SYSTEMS:
        out.setdefault(country, []).append(system)
    return out


def check(value: Any, where: str, countries: list[str]) -> None:
    """A postal-area list as AdCP sends it, its codes in the systems served and in
    countries the product serves (``countries``; empty: any)."""
    if not isinstance(value, list) or not value:
        raise AdcpError(
            "VALIDATION_ERROR",
            "Postal areas are a non-empty list of {country, system, values}.",
            field=where,
        )
    for i, area in enumerate(value):
        at = f"{where}[{i}]"
        country, system = _system_of(area, at)
        pattern, _ = SYSTEMS[(country, system)]
        codes = area.get("values")
        if (
            not isinstance(codes, list)
            or not codes
            or not all(isinstance(c, str) and pattern.match(c) for c in codes)
        ):
            raise AdcpError(
                "VALIDATION_ERROR",
                f"values are {country} {system} codes.",
                field=f"{at}.values",
            )
        if countries and country not in countries:
            raise AdcpError(
                "VALIDATION_ERROR",
                f"The product does not serve {country}.",
                field=f"{at}.country",
                suggestion=f"It serves: {', '.join(countries)}.",
            )


def _system_of(area: Any, at: str) -> tuple[str, str]:
    if not isinstance(area, dict):
        raise AdcpError("VALIDATION_ERROR", "A postal area is an object.", field=at)
    system = area.get("system")
    if "country" not in area and system in LEGACY:
        return LEGACY[system]
    pair = (area.get("country"), system)
    if pair not in SYSTEMS:
        served = ", ".join(f"{c} {s}" for c, s in SYSTEMS)
        raise AdcpError(
            "UNSUPPORTED_FEATURE",
            f"Postal system {system!r} in {area.get('country')!r} is not offered; "
            f"served: {served}.",
            field=f"{at}.system",
        )
    return pair  # type: ignore[return-value]


def codes(value: Any) -> tuple[str, ...]:
    """Checked postal areas as ``COUNTRY:code`` strings."""
    out: list[str] = []
    for area in value or []:
        country, _ = LEGACY.get(area.get("system"), (area.get("country"), None))
        out += [f"{country}:{code}" for code in area.get("values", [])]
    return tuple(dict.fromkeys(out))


def share(value: Any, countries: list[str]) -> float:
    """The share of a product's traffic the areas cover (the product's ``countries``
    split it evenly)."""
    total = 0.0
    for area in value or []:
        country, system = LEGACY.get(area.get("system"), (area.get("country"), area.get("system")))
        per_code = SYSTEMS.get((country, system), (None, 0.0))[1]
        weight = 1 / len(countries) if countries else 1.0
        total += per_code * weight * len(set(area.get("values", [])))
    return min(1.0, total)
