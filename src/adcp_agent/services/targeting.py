"""Targeting overlays: validation against what a product allows and the tenant's signal
catalog, and normalisation into the adapter-neutral ``Targeting``.

Accepted overlay keys (AdCP 3.1, plus the seed-003 aliases):
``geo_countries`` / ``geo_country_any_of``, ``geo_countries_exclude`` / ``geo_country_none_of``,
``geo_regions`` / ``geo_regions_exclude``, ``geo_metros`` / ``geo_metros_exclude``,
``geo_postal_areas`` / ``geo_postal_areas_exclude`` (``services.postal_areas``)
([{system, values}]), ``device_type`` / ``device_type_exclude``, ``device_platform``,
``frequency_cap``,
``signal_targeting_groups`` and the seed's flat ``signals`` (list of signal ids),
``daypart_targets`` (AdCP windows: days and hours) and the seed's named ``dayparts``,
``audience_include`` / ``audience_exclude`` (the account's sync_audiences ids: checked
against the account by ``audience_targeting.check_targeting``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from adcp_agent.adapter_protocol import DaypartWindow, Targeting
from adcp_agent.db.models import Product
from adcp_agent.errors import AdcpError
from adcp_agent.services import postal_areas
from adcp_agent.services.delivery_sim import DIURNAL
from adcp_agent.services.pacing import DAYS, week_hours

SIGNAL_KEY = "adcp_seg"
DEVICE_TYPES = ("desktop", "mobile", "tablet", "ctv", "dooh", "unknown")
# AdCP's device platforms, with each one's share of a product's traffic (its screens'
# operating systems: web and app inventory, or connected TV).
PLATFORM_SHARES = {
    "default": {"android": 0.44, "ios": 0.3, "windows": 0.15, "macos": 0.06, "chromeos": 0.02,
                "linux": 0.01, "fire_os": 0.01, "unknown": 0.01},
    "ctv": {"roku_os": 0.35, "fire_os": 0.2, "tizen": 0.15, "android": 0.11, "webos": 0.1,
            "tvos": 0.08, "unknown": 0.01},
}  # fmt: skip
PLATFORMS = (
    "ios", "android", "windows", "macos", "linux", "chromeos", "tvos", "tizen", "webos",
    "fire_os", "roku_os", "unknown",
)  # fmt: skip
_ALIASES = {"geo_country_any_of": "geo_countries", "geo_country_none_of": "geo_countries_exclude"}
# overlay key -> the capability a product must list in its ``targeting``
_CAPABILITY = {
    "geo_countries": "geo_country",
    "geo_countries_exclude": "geo_country",
    "geo_regions": "geo_region",
    "geo_regions_exclude": "geo_region",
    "geo_metros": "geo_metro",
    "geo_metros_exclude": "geo_metro",
    "device_type": "device_type",
    "device_type_exclude": "device_type",
    "device_platform": "os",
    "geo_postal_areas": "geo_postal",
    "geo_postal_areas_exclude": "geo_postal",
    "signals": "signals",
    "signal_targeting_groups": "signals",
    "dayparts": "daypart",
    "daypart_targets": "daypart",
    "audience_include": "audiences",
    "audience_exclude": "audiences",
    "frequency_cap": None,  # always honoured
}
# reach_factor's ``coverage`` holds the account's audiences' reach (a share of the
# publisher's users, 0-100) under this prefix, next to the signals' coverage.
AUDIENCE_COVERAGE = "audience:"
AUDIENCE_KEY = "adcp_aud"  # the ad servers' key-value for targeted audiences


def audience_seller_id(account_id: str, audience_id: str) -> str:
    """An audience's name on the ad servers: stable, short, unique per account."""
    digest = hashlib.sha256(f"{account_id}\x1f{audience_id}".encode()).hexdigest()
    return f"aud_{digest[:16]}"


def audience_key_values(data: dict[str, Any], account_id: str) -> dict[str, tuple[str, ...]]:
    """The overlay's audiences as key-values: ``adcp_aud`` and ``adcp_aud_exclude``."""
    out: dict[str, tuple[str, ...]] = {}
    for name, key in (
        ("audience_include", AUDIENCE_KEY),
        ("audience_exclude", f"{AUDIENCE_KEY}_exclude"),
    ):
        ids = [a for a in data.get(name) or [] if isinstance(a, str)]
        if ids:
            out[key] = tuple(audience_seller_id(account_id, a) for a in ids)
    return out


_COUNTRY = re.compile(r"^[A-Z]{2}$")
_REGION = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
_DMA = re.compile(r"^\d{3}$")


def _list_of_str(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AdcpError("VALIDATION_ERROR", f"'{field}' must be a list of strings.", field=field)
    return value


_OPPOSITES = (
    ("geo_countries", "geo_countries_exclude"),
    ("geo_regions", "geo_regions_exclude"),
    ("geo_metros", "geo_metros_exclude"),
    ("device_type", "device_type_exclude"),
    ("geo_postal_areas", "geo_postal_areas_exclude"),
    ("audience_include", "audience_exclude"),
)


def _flat(value: Any) -> list[str]:
    """An overlay list's values (metros' ``values`` flattened)."""
    out: list[str] = []
    for item in value or []:
        if isinstance(item, dict):
            out += [str(v) for v in item.get("values") or []]
        elif isinstance(item, str):
            out.append(item)
    return out


_WINDOW_KEYS = {"days", "start_hour", "end_hour", "label"}


def _check_windows(value: Any, where: str) -> None:
    """AdCP daypart targets: [{days, start_hour (0-23), end_hour (1-24, after it), label?}]."""
    if not isinstance(value, list) or not value:
        raise AdcpError(
            "VALIDATION_ERROR", "daypart_targets is a non-empty list of windows.", field=where
        )
    for i, window in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(window, dict) or set(window) - _WINDOW_KEYS:
            raise AdcpError(
                "VALIDATION_ERROR",
                "A daypart target is {days, start_hour, end_hour, label?}.",
                field=at,
            )
        days = window.get("days")
        if (
            not isinstance(days, list)
            or not days
            or any(d not in DAYS for d in days)
            or len(set(days)) != len(days)
        ):
            raise AdcpError(
                "VALIDATION_ERROR",
                f"days are distinct days of the week: {', '.join(DAYS)}.",
                field=f"{at}.days",
            )
        start, end = window.get("start_hour"), window.get("end_hour")
        if not _whole(start) or not 0 <= start <= 23:
            raise AdcpError(
                "VALIDATION_ERROR",
                "start_hour is a whole hour from 0 to 23.",
                field=f"{at}.start_hour",
            )
        if not _whole(end) or not start < end <= 24:
            raise AdcpError(
                "VALIDATION_ERROR",
                "end_hour is a whole hour after start_hour, at most 24 (exclusive).",
                field=f"{at}.end_hour",
            )
        label = window.get("label")
        if label is not None and (not isinstance(label, str) or len(label) > 100):
            raise AdcpError(
                "VALIDATION_ERROR", "label is text of at most 100 characters.", field=f"{at}.label"
            )


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def windows_of(data: dict[str, Any]) -> tuple[DaypartWindow, ...]:
    return tuple(
        DaypartWindow(tuple(w["days"]), int(w["start_hour"]), int(w["end_hour"]))
        for w in data.get("daypart_targets") or []
    )


def canonical(overlay: dict[str, Any] | None) -> dict[str, Any]:
    """Aliases folded into their AdCP names; the stored and echoed form."""
    out: dict[str, Any] = {}
    for key, value in (overlay or {}).items():
        out[_ALIASES.get(key, key)] = value
    return out


def validate(
    overlay: dict[str, Any] | None,
    product: Product,
    signal_ids: set[str],
    field: str,
) -> dict[str, Any]:
    """Check an overlay against the product and the catalog; return its canonical form."""
    data = canonical(overlay)
    allowed = set(product.targeting)
    for key, value in data.items():
        where = f"{field}.{key}"
        if key not in _CAPABILITY:
            raise AdcpError(
                "VALIDATION_ERROR",
                f"Targeting '{key}' is not supported.",
                field=where,
                suggestion=f"Supported keys: {', '.join(sorted(_CAPABILITY))}.",
            )
        capability = _CAPABILITY[key]
        if capability is not None and capability not in allowed:
            raise AdcpError(
                "VALIDATION_ERROR",
                f"Product '{product.product_id}' does not allow {capability} targeting.",
                field=where,
                suggestion=f"It allows: {', '.join(sorted(allowed)) or 'none'}.",
            )
        if key in ("geo_countries", "geo_countries_exclude"):
            for code in _list_of_str(value, where):
                if not _COUNTRY.match(code):
                    raise AdcpError(
                        "VALIDATION_ERROR",
                        f"'{code}' is not an ISO 3166-1 alpha-2 code.",
                        field=where,
                    )
            if key == "geo_countries" and product.countries:
                outside = sorted(set(value) - set(product.countries))
                if outside:
                    raise AdcpError(
                        "VALIDATION_ERROR",
                        f"Product '{product.product_id}' does not serve {', '.join(outside)}.",
                        field=where,
                        suggestion=f"It serves: {', '.join(product.countries)}.",
                    )
        elif key in ("geo_regions", "geo_regions_exclude"):
            for code in _list_of_str(value, where):
                if not _REGION.match(code):
                    raise AdcpError(
                        "VALIDATION_ERROR",
                        f"'{code}' is not an ISO 3166-2 region code.",
                        field=where,
                    )
        elif key in ("geo_metros", "geo_metros_exclude"):
            if not isinstance(value, list) or not all(
                isinstance(m, dict) and isinstance(m.get("values"), list) for m in value
            ):
                raise AdcpError(
                    "VALIDATION_ERROR",
                    "geo_metros must be a list of {system, values}.",
                    field=where,
                )
            for i, metro in enumerate(value):
                if metro.get("system") != "nielsen_dma":
                    raise AdcpError(
                        "UNSUPPORTED_FEATURE",
                        f"Metro system {metro.get('system')!r} is not offered: metros are "
                        "Nielsen DMAs here (get_adcp_capabilities media_buy.execution).",
                        field=f"{where}[{i}].system",
                    )
                codes = metro["values"]
                if not codes or not all(isinstance(c, str) and _DMA.match(c) for c in codes):
                    raise AdcpError(
                        "VALIDATION_ERROR",
                        "Nielsen DMA codes are three digits, e.g. '501'.",
                        field=f"{where}[{i}].values",
                    )
        elif key in ("device_type", "device_type_exclude"):
            for device in _list_of_str(value, where):
                if device not in DEVICE_TYPES:
                    raise AdcpError(
                        "VALIDATION_ERROR",
                        f"Unknown device type '{device}'.",
                        field=where,
                        suggestion=f"Use: {', '.join(DEVICE_TYPES)}.",
                    )
        elif key in ("audience_include", "audience_exclude"):
            ids = _list_of_str(value, where)
            if not ids or not all(ids) or len(set(ids)) != len(ids):
                raise AdcpError(
                    "VALIDATION_ERROR",
                    f"{key} is a non-empty list of distinct audience ids.",
                    field=where,
                )
        elif key in postal_areas.KEYS:
            postal_areas.check(value, where, list(product.countries))
        elif key == "device_platform":
            platforms = _list_of_str(value, where)
            unknown = [p for p in platforms if p not in PLATFORMS]
            if not platforms or unknown or len(set(platforms)) != len(platforms):
                raise AdcpError(
                    "VALIDATION_ERROR",
                    f"device_platform is a non-empty list of distinct platforms: "
                    f"{', '.join(PLATFORMS)}.",
                    field=where,
                )
        elif key == "daypart_targets":
            _check_windows(value, where)
        elif key == "frequency_cap" and (
            not isinstance(value, dict) or not isinstance(value.get("max_impressions"), int)
        ):
            raise AdcpError(
                "VALIDATION_ERROR",
                "frequency_cap needs an integer max_impressions.",
                field=where,
            )
    for include, exclude in _OPPOSITES:
        both = set(_flat(data.get(include))) & set(_flat(data.get(exclude)))
        if both:
            raise AdcpError(
                "VALIDATION_ERROR",
                f"{', '.join(sorted(both))} is both in {include} and in {exclude}.",
                field=f"{field}.{exclude}",
            )
    for sid in signals_of(data):
        if sid not in signal_ids:
            raise AdcpError(
                "SIGNAL_NOT_FOUND",
                f"Signal '{sid}' is not in this publisher's catalog.",
                field=f"{field}.signals",
                suggestion="Call get_signals for valid signal ids.",
            )
    return data


def _group_signal_ids(signals: Iterable[Any]) -> list[str]:
    ids: list[str] = []
    for entry in signals:
        if not isinstance(entry, dict):
            continue
        sid = entry.get("signal_agent_segment_id") or (entry.get("signal_ref") or {}).get(
            "signal_id"
        )
        if isinstance(sid, str):
            ids.append(sid)
    return ids


def signals_of(data: dict[str, Any], *, exclude: bool = False) -> list[str]:
    """Signal ids an overlay includes (or, with ``exclude``, excludes)."""
    ids: list[str] = []
    if not exclude and isinstance(data.get("signals"), list):
        ids += [s for s in data["signals"] if isinstance(s, str)]
    groups = data.get("signal_targeting_groups")
    if isinstance(groups, dict):
        for group in groups.get("groups", []):
            if not isinstance(group, dict):
                continue
            if (group.get("operator") == "none") == exclude:
                ids += _group_signal_ids(group.get("signals", []))
    return list(dict.fromkeys(ids))


def to_adapter(data: dict[str, Any], account_id: str) -> Targeting:
    """The overlay for the ad servers; ``account_id`` names the account whose
    audiences it targets (their key-values depend on it)."""
    metros = tuple(_flat(data.get("geo_metros")))
    included = signals_of(data)
    excluded = signals_of(data, exclude=True)
    key_values: dict[str, tuple[str, ...]] = {}
    if included:
        key_values[SIGNAL_KEY] = tuple(included)
    if excluded:
        key_values[f"{SIGNAL_KEY}_exclude"] = tuple(excluded)
    key_values.update(audience_key_values(data, account_id))
    return Targeting(
        geo_countries=tuple(data.get("geo_countries", []) or []),
        geo_countries_exclude=tuple(data.get("geo_countries_exclude", []) or []),
        geo_regions=tuple(data.get("geo_regions", []) or []),
        geo_metros=metros,
        device_types=tuple(data.get("device_type", []) or []),
        geo_regions_exclude=tuple(data.get("geo_regions_exclude", []) or []),
        geo_metros_exclude=tuple(_flat(data.get("geo_metros_exclude"))),
        device_types_exclude=tuple(data.get("device_type_exclude", []) or []),
        device_platforms=tuple(data.get("device_platform", []) or []),
        postal_codes=postal_areas.codes(data.get("geo_postal_areas")),
        postal_codes_exclude=postal_areas.codes(data.get("geo_postal_areas_exclude")),
        key_values=key_values,
        dayparts=tuple(data.get("dayparts", []) or []),
        daypart_windows=windows_of(data),
        frequency_cap=data.get("frequency_cap"),
    )


def reach_factor(data: dict[str, Any], product: Product, coverage: dict[str, float]) -> float:
    """Share of a product's inventory an overlay leaves: narrower targeting, fewer avails.
    Countries split the product's inventory evenly; each included signal keeps its
    coverage share (signals in one group are ORed, so the largest counts)."""
    factor = 1.0
    countries = data.get("geo_countries")
    if countries and product.countries:
        factor *= len(set(countries) & set(product.countries)) / len(product.countries)
    excluded = data.get("geo_countries_exclude")
    if excluded and product.countries:
        factor *= 1 - len(set(excluded) & set(product.countries)) / len(product.countries)
    if data.get("geo_regions"):
        factor *= min(1.0, 0.08 * len(data["geo_regions"]))
    if data.get("geo_metros"):
        factor *= min(1.0, 0.05 * sum(len(m.get("values", [])) for m in data["geo_metros"]))
    if data.get("geo_regions_exclude"):
        factor *= max(0.0, 1 - 0.08 * len(data["geo_regions_exclude"]))
    if data.get("geo_metros_exclude"):
        factor *= max(0.0, 1 - 0.05 * len(_flat(data["geo_metros_exclude"])))
    devices = data.get("device_type")
    if devices:
        factor *= min(1.0, len(set(devices)) / 3)
    excluded_devices = set(data.get("device_type_exclude") or []) & {"desktop", "mobile", "tablet"}
    if excluded_devices:
        factor *= 1 - len(excluded_devices) / 3
    included = signals_of(data)
    if included:
        factor *= max(coverage.get(s, 0.0) for s in included) / 100
    if data.get("geo_postal_areas"):
        factor *= postal_areas.share(data["geo_postal_areas"], list(product.countries))
    if data.get("geo_postal_areas_exclude"):
        factor *= 1 - postal_areas.share(data["geo_postal_areas_exclude"], list(product.countries))
    platforms = data.get("device_platform")
    if platforms:
        ctv = bool(product.channels) and set(product.channels) <= {"ctv"}
        shares = PLATFORM_SHARES["ctv" if ctv else "default"]
        factor *= min(1.0, sum(shares.get(p, 0.0) for p in set(platforms)))
    hours = week_hours(data)
    if hours is not None:  # the traffic in those hours (it peaks in the evening)
        factor *= sum(DIURNAL[h % 24] for h in hours) / (7 * sum(DIURNAL))
    included_audiences = data.get("audience_include") or []
    if included_audiences:  # members of any of them
        factor *= max(coverage.get(AUDIENCE_COVERAGE + a, 0.0) for a in included_audiences) / 100
    for audience in data.get("audience_exclude") or []:
        factor *= 1 - coverage.get(AUDIENCE_COVERAGE + audience, 0.0) / 100
    return max(0.0, min(1.0, factor))
