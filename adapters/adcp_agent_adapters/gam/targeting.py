"""AdCP targeting as GAM ``Targeting``: inventory (ad units, placements), geography,
device categories and custom key-values (activated signals included).

Geography uses Google's geo-target ids. Countries have a built-in table for common ISO
codes (Google's country id is 2000 + the ISO 3166-1 numeric code); a US metro given as a
Nielsen DMA code maps to 200000 + the code. Regions (``US-CA``) and anything else need the
tenant's ``geo_location_ids``: unknown codes are rejected, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from adcp_agent.adapter_protocol import DaypartWindow, Targeting
from adcp_agent_adapters.gam import faults
from adcp_agent_adapters.gam.config import GamConfig
from adcp_agent_adapters.gam.session import GamSession

# ISO 3166-1 alpha-2 -> numeric, for the built-in country ids (2000 + numeric).
_ISO_NUMERIC = {
    "AR": 32, "AT": 40, "AU": 36, "BE": 56, "BR": 76, "CA": 124, "CH": 756, "CL": 152,
    "CN": 156, "CO": 170, "CZ": 203, "DE": 276, "DK": 208, "EG": 818, "ES": 724, "FI": 246,
    "FR": 250, "GB": 826, "GR": 300, "HK": 344, "HU": 348, "ID": 360, "IE": 372, "IL": 376,
    "IN": 356, "IT": 380, "JP": 392, "KR": 410, "MX": 484, "MY": 458, "NG": 566, "NL": 528,
    "NO": 578, "NZ": 554, "PE": 604, "PH": 608, "PL": 616, "PT": 620, "RO": 642, "SA": 682,
    "SE": 752, "SG": 702, "TH": 764, "TR": 792, "TW": 158, "UA": 804, "AE": 784, "US": 840,
    "VN": 704, "ZA": 710,
}  # fmt: skip
COUNTRY_LOCATION_IDS: dict[str, int] = {code: 2000 + n for code, n in _ISO_NUMERIC.items()}
# GAM's device category ids (the Device_Category PQL table); tenants may override.
DEVICE_CATEGORY_IDS: dict[str, int] = {
    "desktop": 30000,
    "mobile": 30001,
    "tablet": 30002,
    "ctv": 30004,
}
SIGNAL_KEY = "adcp_seg"  # core's key for activated signals (Targeting.key_values)
SIGNAL_EXCLUDE_SUFFIX = "_exclude"


def _location_id(code: str, kind: str, config: GamConfig) -> int:
    if code in config.geo_location_ids:
        return config.geo_location_ids[code]
    if kind == "country" and code in COUNTRY_LOCATION_IDS:
        return COUNTRY_LOCATION_IDS[code]
    if kind == "metro" and code.isdigit() and len(code) == 3:
        return 200000 + int(code)
    field = {
        "country": "geo_countries",
        "region": "geo_regions",
        "metro": "geo_metros",
        "postal": "geo_postal_areas",
    }[kind]
    raise faults.error(
        "VALIDATION_ERROR",
        f"This Google Ad Manager network has no location id for {kind} '{code}'.",
        "",
        "UNMAPPED_LOCATION",
        field=f"targeting.{field}",
        suggestion="The publisher can add it to the tenant's adapter_config.geo_location_ids "
        '(e.g. {"US-CA": 21137}).',
    )


def geo_targeting(targeting: Targeting, config: GamConfig) -> dict[str, Any] | None:
    targeted = [
        *({"id": _location_id(c, "country", config)} for c in targeting.geo_countries),
        *({"id": _location_id(r, "region", config)} for r in targeting.geo_regions),
        *({"id": _location_id(m, "metro", config)} for m in targeting.geo_metros),
        *({"id": _location_id(p, "postal", config)} for p in targeting.postal_codes),
    ]
    excluded = [
        *({"id": _location_id(c, "country", config)} for c in targeting.geo_countries_exclude),
        *({"id": _location_id(r, "region", config)} for r in targeting.geo_regions_exclude),
        *({"id": _location_id(m, "metro", config)} for m in targeting.geo_metros_exclude),
        *({"id": _location_id(p, "postal", config)} for p in targeting.postal_codes_exclude),
    ]
    if not targeted and not excluded:
        return None
    return {"targetedLocations": targeted, "excludedLocations": excluded}


def _operating_systems(targeting: Targeting, config: GamConfig) -> dict[str, Any] | None:
    """AdCP device platforms as GAM operating systems, by the tenant's ids for them."""
    if not targeting.device_platforms:
        return None
    missing = [p for p in targeting.device_platforms if p not in config.operating_system_ids]
    if missing:
        raise faults.error(
            "VALIDATION_ERROR",
            f"Device platform '{missing[0]}' has no Google Ad Manager operating system here.",
            "",
            "UNMAPPED_PLATFORM",
            field="targeting.device_platform",
            suggestion="The publisher can map it in the tenant's "
            "adapter_config.operating_system_ids (GAM's Operating_System table).",
        )
    return {
        "isTargeted": True,
        "operatingSystems": [
            {"id": config.operating_system_ids[p]}
            for p in dict.fromkeys(targeting.device_platforms)
        ],
    }


def device_targeting(targeting: Targeting, config: GamConfig) -> dict[str, Any] | None:
    systems = _operating_systems(targeting, config)
    if not targeting.device_types and not targeting.device_types_exclude:
        return {"operatingSystemTargeting": systems} if systems else None
    ids = {**DEVICE_CATEGORY_IDS, **config.device_category_ids}
    for name, devices in (
        ("device_type", targeting.device_types),
        ("device_type_exclude", targeting.device_types_exclude),
    ):
        unknown = [d for d in devices if d not in ids]
        if unknown:
            raise faults.error(
                "VALIDATION_ERROR",
                f"Device type '{unknown[0]}' has no Google Ad Manager device category here.",
                "",
                "UNMAPPED_DEVICE",
                field=f"targeting.{name}",
                suggestion=f"Use one of: {', '.join(sorted(ids))}.",
            )
    categories: dict[str, Any] = {}
    if targeting.device_types:
        categories["targetedDeviceCategories"] = [
            {"id": ids[d]} for d in dict.fromkeys(targeting.device_types)
        ]
    if targeting.device_types_exclude:
        categories["excludedDeviceCategories"] = [
            {"id": ids[d]} for d in dict.fromkeys(targeting.device_types_exclude)
        ]
    out: dict[str, Any] = {"deviceCategoryTargeting": categories}
    if systems:
        out["operatingSystemTargeting"] = systems
    return out


def inventory_targeting(implementation_config: Mapping[str, Any]) -> dict[str, Any]:
    """The product's placements: ``ad_unit_ids`` and/or ``placement_ids``."""
    ad_units = [str(a) for a in implementation_config.get("ad_unit_ids") or []]
    placements = [int(p) for p in implementation_config.get("placement_ids") or []]
    if not ad_units and not placements:
        raise faults.error(
            "CONFIGURATION_ERROR",
            "The product is not mapped to Google Ad Manager inventory.",
            "",
            "NO_INVENTORY",
            field="implementation_config.ad_unit_ids",
            suggestion="Set ad_unit_ids and/or placement_ids in the product's "
            "implementation_config (sync_inventory lists them).",
        )
    include = bool(implementation_config.get("include_descendants", True))
    out: dict[str, Any] = {}
    if ad_units:
        out["targetedAdUnits"] = [{"adUnitId": a, "includeDescendants": include} for a in ad_units]
    if placements:
        out["targetedPlacementIds"] = placements
    return out


def key_value_criteria(
    targeting: Targeting, implementation_config: Mapping[str, Any]
) -> list[tuple[str, tuple[str, ...], bool]]:
    """(key, values, exclude) triples: the product's fixed ``key_values`` plus the
    buyer's activated signals (``adcp_seg`` and ``adcp_seg_exclude``)."""
    criteria: list[tuple[str, tuple[str, ...], bool]] = []
    fixed = implementation_config.get("key_values") or {}
    merged: dict[str, tuple[str, ...]] = {
        str(k): tuple(str(v) for v in (vals if isinstance(vals, list | tuple) else [vals]))
        for k, vals in fixed.items()
    }
    for key, values in targeting.key_values.items():
        merged[key] = tuple(dict.fromkeys(merged.get(key, ()) + tuple(values)))
    for key, values in merged.items():
        if not values:
            continue
        if key.endswith(SIGNAL_EXCLUDE_SUFFIX):
            criteria.append((key.removesuffix(SIGNAL_EXCLUDE_SUFFIX), values, True))
        else:
            criteria.append((key, values, False))
    return criteria


class CustomTargetingResolver:
    """Key and value names -> GAM ids, through CustomTargetingService. Missing keys are
    created as PREDEFINED keys and missing values as EXACT values (when allowed); ids are
    cached for the life of the adapter."""

    def __init__(self, session: GamSession) -> None:
        self.session = session
        self._keys: dict[str, int] = {}
        self._values: dict[tuple[int, str], int] = {}

    async def key_ids(self, names: Iterable[str], *, create: bool) -> dict[str, int]:
        wanted = sorted(set(names) - set(self._keys))
        if wanted:
            found = await self.session.select(
                "CustomTargetingService",
                "getCustomTargetingKeysByStatement",
                "name IN (:names)",
                {"names": wanted},
            )
            self._keys.update({k.name: int(k.id) for k in found})
            missing = [n for n in wanted if n not in self._keys]
            if missing and create:
                created = await self.session.call(
                    "CustomTargetingService",
                    "createCustomTargetingKeys",
                    [{"name": n, "displayName": n, "type": "PREDEFINED"} for n in missing],
                )
                self._keys.update({k.name: int(k.id) for k in created})
        return {n: self._keys[n] for n in names if n in self._keys}

    async def value_ids(self, key_id: int, names: Iterable[str], *, create: bool) -> list[int]:
        names = list(dict.fromkeys(names))
        wanted = [n for n in names if (key_id, n) not in self._values]
        if wanted:
            found = await self.session.select(
                "CustomTargetingService",
                "getCustomTargetingValuesByStatement",
                "customTargetingKeyId = :keyId AND name IN (:names)",
                {"keyId": key_id, "names": wanted},
            )
            self._values.update({(key_id, v.name): int(v.id) for v in found})
            missing = [n for n in wanted if (key_id, n) not in self._values]
            if missing and create:
                created = await self.session.call(
                    "CustomTargetingService",
                    "createCustomTargetingValues",
                    [
                        {
                            "customTargetingKeyId": key_id,
                            "name": n,
                            "displayName": n,
                            "matchType": "EXACT",
                        }
                        for n in missing
                    ],
                )
                self._values.update({(key_id, v.name): int(v.id) for v in created})
        return [self._values[(key_id, n)] for n in names if (key_id, n) in self._values]

    async def custom_targeting(
        self,
        criteria: list[tuple[str, tuple[str, ...], bool]],
        *,
        create: bool = True,
    ) -> dict[str, Any] | None:
        """GAM's required shape: a top-level OR set holding one AND set of criteria."""
        if not criteria:
            return None
        keys = await self.key_ids([k for k, _, _ in criteria], create=create)
        leaves: list[dict[str, Any]] = []
        for key, values, exclude in criteria:
            if key not in keys:
                continue  # only when create=False (forecasts): unknown keys match nothing
            value_ids = await self.value_ids(keys[key], values, create=create)
            if value_ids:
                leaves.append(
                    {
                        "xsi_type": "CustomCriteria",
                        "keyId": keys[key],
                        "valueIds": value_ids,
                        "operator": "IS_NOT" if exclude else "IS",
                    }
                )
        return _and_set(leaves)


def _reject_dayparts(targeting: Targeting) -> None:
    if targeting.dayparts:
        raise faults.error(
            "UNSUPPORTED_FEATURE",
            "Named dayparts are not mapped to Google Ad Manager by this agent.",
            "",
            "DAYPARTS",
            field="targeting.dayparts",
            suggestion="Use AdCP daypart_targets (days and hours) instead.",
        )


def daypart_targeting(targeting: Targeting, config: GamConfig) -> dict[str, Any] | None:
    """AdCP daypart targets as GAM DayParts: one per day of each window, hours on the
    hour (GAM's TimeOfDay; an end hour of 24 is midnight)."""
    if not targeting.daypart_windows:
        return None
    parts = [
        {
            "dayOfWeek": day.upper(),
            "startTime": {"hour": w.start_hour, "minute": "ZERO"},
            "endTime": {"hour": w.end_hour, "minute": "ZERO"},
        }
        for w in targeting.daypart_windows
        for day in w.days
    ]
    return {"dayParts": parts, "timeZone": config.daypart_time_zone}


def _and_set(leaves: list[Any]) -> dict[str, Any] | None:
    if not leaves:
        return None
    return {
        "logicalOperator": "OR",
        "children": [
            {"xsi_type": "CustomCriteriaSet", "logicalOperator": "AND", "children": leaves}
        ],
    }


def _existing_leaves(custom: Any) -> list[Any]:
    """The criteria of a line's custom targeting, when it has our shape OR[AND[...]]."""
    if custom is None or not custom.children:
        return []
    if len(custom.children) != 1 or not hasattr(custom.children[0], "children"):
        raise faults.error(
            "UNSUPPORTED_FEATURE",
            "The line item's key-value targeting was restructured in Google Ad Manager; "
            "change it there.",
            "",
            "CUSTOM_TARGETING_SHAPE",
            field="targeting",
        )
    return list(custom.children[0].children or [])


async def build_targeting(
    resolver: CustomTargetingResolver,
    config: GamConfig,
    targeting: Targeting,
    implementation_config: Mapping[str, Any],
    *,
    create_keys: bool = True,
) -> dict[str, Any]:
    _reject_dayparts(targeting)
    out: dict[str, Any] = {"inventoryTargeting": inventory_targeting(implementation_config)}
    geo = geo_targeting(targeting, config)
    if geo:
        out["geoTargeting"] = geo
    dayparts = daypart_targeting(targeting, config)
    if dayparts:
        out["dayPartTargeting"] = dayparts
    tech = device_targeting(targeting, config)
    if tech:
        out["technologyTargeting"] = tech
    custom = await resolver.custom_targeting(
        key_value_criteria(targeting, implementation_config), create=create_keys
    )
    if custom:
        out["customTargeting"] = custom
    return out


async def update_targeting(
    resolver: CustomTargetingResolver, config: GamConfig, line_item: Any, targeting: Targeting
) -> None:
    """Apply a new AdCP overlay to a fetched LineItem in place. Inventory and key-values
    the buyer does not control (the product's fixed ``key_values``) are kept."""
    _reject_dayparts(targeting)
    current = line_item.targeting
    current.geoTargeting = geo_targeting(targeting, config)
    current.dayPartTargeting = daypart_targeting(targeting, config)
    device = device_targeting(targeting, config)
    if current.technologyTargeting is None:
        current.technologyTargeting = device
    else:
        tech = current.technologyTargeting
        tech.deviceCategoryTargeting = (device or {}).get("deviceCategoryTargeting")
        tech.operatingSystemTargeting = (device or {}).get("operatingSystemTargeting")
    criteria = key_value_criteria(targeting, {})
    managed = await resolver.key_ids({k for k, _, _ in criteria} | {SIGNAL_KEY}, create=False)
    managed_ids = set(managed.values())
    kept = [
        leaf
        for leaf in _existing_leaves(current.customTargeting)
        if int(getattr(leaf, "keyId", 0) or 0) not in managed_ids
    ]
    new = await resolver.custom_targeting(criteria)
    current.customTargeting = _and_set(kept + (new["children"][0]["children"] if new else []))


def targeting_from_dict(data: Mapping[str, Any]) -> Targeting:
    """A ``ForecastRequest.targeting`` dict (AdCP overlay names or ``Targeting`` field
    names) as ``Targeting``."""

    def strings(*keys: str) -> tuple[str, ...]:
        for key in keys:
            value = data.get(key)
            if value:
                return tuple(str(v) for v in value)
        return ()

    def flat(key: str) -> list[str]:
        out: list[str] = []
        for entry in data.get(key) or []:
            if isinstance(entry, Mapping):
                out.extend(str(v) for v in entry.get("values", []))
            else:
                out.append(str(entry))
        return out

    metros, metros_exclude = flat("geo_metros"), flat("geo_metros_exclude")
    key_values = {
        str(k): tuple(str(v) for v in vals) for k, vals in (data.get("key_values") or {}).items()
    }
    return Targeting(
        geo_countries=strings("geo_countries", "geo_country_any_of"),
        geo_countries_exclude=strings("geo_countries_exclude", "geo_country_none_of"),
        geo_regions=strings("geo_regions"),
        geo_metros=tuple(metros),
        device_types=strings("device_types", "device_type"),
        geo_regions_exclude=strings("geo_regions_exclude"),
        geo_metros_exclude=tuple(metros_exclude),
        device_types_exclude=strings("device_types_exclude", "device_type_exclude"),
        device_platforms=strings("device_platforms", "device_platform"),
        daypart_windows=tuple(
            DaypartWindow(tuple(w["days"]), int(w["start_hour"]), int(w["end_hour"]))
            for w in data.get("daypart_targets") or []
            if isinstance(w, Mapping)
        ),
        key_values=key_values,
        frequency_cap=data.get("frequency_cap"),
    )
