"""Domain rows → AdCP 3.1 wire objects. One function per object, no I/O."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from adcp_agent.db.models import AuthorizedProperty, CreativeFormat, Product, Signal
from adcp_agent.services import optimization_goals, reporting_webhooks, signals


def format_id(agent_url: str, fid: str) -> dict[str, str]:
    return {"agent_url": agent_url, "id": fid}


def pricing_option(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "pricing_option_id": raw["pricing_option_id"],
        "pricing_model": raw.get("pricing_model", "cpm"),
        "currency": raw.get("currency", "USD"),
    }
    if raw.get("fixed_price") is not None:
        out["fixed_price"] = raw["fixed_price"]
    if raw.get("floor_price") is not None:
        out["floor_price"] = raw["floor_price"]
    if raw.get("min_spend"):
        out["min_spend_per_package"] = raw["min_spend"]
    return out


def publisher_properties(
    property_ids: Iterable[str], properties: dict[str, AuthorizedProperty]
) -> list[dict[str, Any]]:
    by_domain: dict[str, list[str]] = defaultdict(list)
    for pid in property_ids:
        prop = properties.get(pid)
        if prop is not None:
            by_domain[prop.publisher_domain].append(pid)
    return [
        {"publisher_domain": domain, "selection_type": "by_id", "property_ids": ids}
        for domain, ids in sorted(by_domain.items())
    ]


def product(
    p: Product,
    *,
    agent_url: str,
    properties: dict[str, AuthorizedProperty],
    brief_relevance: str | None,
    ad_server: str = optimization_goals.SIMULATED,
) -> dict[str, Any]:
    metrics = reporting_webhooks.metrics_of(p.channels)
    out: dict[str, Any] = {
        "product_id": p.product_id,
        "name": p.name,
        "description": p.description,
        "publisher_properties": publisher_properties(p.property_ids, properties),
        "channels": list(p.channels),
        "format_ids": [format_id(agent_url, f) for f in p.format_ids],
        "delivery_type": p.delivery_type,
        "pricing_options": [pricing_option(o) for o in p.pricing_options],
        "reporting_capabilities": {
            "available_reporting_frequencies": ["hourly", "daily", "monthly"],
            "expected_delay_minutes": 60,
            "timezone": "UTC",
            "supports_webhooks": True,
            "available_metrics": metrics,
            "date_range_support": "date_range",
        },
    }
    optimization = optimization_goals.product_wire(p, ad_server)
    if optimization is not None:
        out["metric_optimization"] = optimization
        out["max_optimization_goals"] = optimization_goals.MAX_GOALS
    if brief_relevance:
        out["brief_relevance"] = brief_relevance
    return out


def _asset_formats(mime_types: list[str]) -> list[str]:
    ext = {
        "image/png": "png",
        "image/jpeg": "jpg",
        "image/gif": "gif",
        "image/webp": "webp",
        "video/mp4": "mp4",
        "audio/mpeg": "mp3",
        "audio/aac": "aac",
        "text/html": "html",
    }
    return [ext[m] for m in mime_types if m in ext]


def creative_format(f: CreativeFormat, *, agent_url: str) -> dict[str, Any]:
    assets: list[dict[str, Any]] = []
    if f.kind == "display":
        assets.append(
            {
                "item_type": "individual",
                "asset_id": "banner_image",
                "asset_type": "image",
                "asset_role": "hero_image",
                "required": True,
                "requirements": {
                    "min_width": f.width,
                    "max_width": f.width,
                    "min_height": f.height,
                    "max_height": f.height,
                    "unit": "px",
                    "formats": [x for x in _asset_formats(f.mime_types) if x != "html"],
                    **({"max_file_size_kb": f.max_file_kb} if f.max_file_kb else {}),
                },
            }
        )
    elif f.kind == "video":
        assets.append(
            {
                "item_type": "individual",
                "asset_id": "video_file",
                "asset_type": "video",
                "required": True,
                "requirements": {
                    "min_width": f.width,
                    "min_height": f.height,
                    "min_duration_ms": min(f.durations_s) * 1000,
                    "max_duration_ms": max(f.durations_s) * 1000,
                    "containers": _asset_formats(f.mime_types),
                    **({"max_file_size_kb": f.max_file_kb} if f.max_file_kb else {}),
                },
            }
        )
    else:
        assets.append(
            {
                "item_type": "individual",
                "asset_id": "audio_file",
                "asset_type": "audio",
                "required": True,
                "requirements": {
                    "min_duration_ms": min(f.durations_s) * 1000,
                    "max_duration_ms": max(f.durations_s) * 1000,
                    "formats": _asset_formats(f.mime_types),
                    **({"max_file_size_kb": f.max_file_kb} if f.max_file_kb else {}),
                },
            }
        )
    assets.append(
        {
            "item_type": "individual",
            "asset_id": "clickthrough_url",
            "asset_type": "url",
            "required": f.kind == "display",
            "requirements": {"role": "clickthrough", "protocols": ["https", "http"]},
        }
    )
    out: dict[str, Any] = {
        "format_id": format_id(agent_url, f.format_id),
        "name": f.name,
        "description": f.description,
        "assets": assets,
    }
    if f.width and f.height:
        out["renders"] = [
            {"role": "primary", "dimensions": {"width": f.width, "height": f.height, "unit": "px"}}
        ]
    return out


def authorized_property(p: AuthorizedProperty) -> dict[str, Any]:
    return {
        "property_id": p.property_id,
        "property_type": p.property_type,
        "name": p.name,
        "publisher_domain": p.publisher_domain,
        "identifiers": list(p.identifiers),
        "tags": list(p.tags),
    }


def signal(s: Signal, *, agent_url: str, publisher_domain: str) -> dict[str, Any]:
    deployment: dict[str, Any] = {"type": "agent", "agent_url": agent_url, "is_live": True}
    deployment["activation_key"] = {"type": "key_value", "key": "adcp_seg", "value": s.signal_id}
    out: dict[str, Any] = {
        "signal_ref": {
            "scope": "data_provider",
            "data_provider_domain": publisher_domain,
            "signal_id": s.signal_id,
        },
        "signal_agent_segment_id": s.signal_id,
        "name": s.name,
        "description": s.description,
        "value_type": "binary",
        "signal_type": "owned",
        "data_provider": s.data_provider or publisher_domain,
        "coverage_percentage": s.coverage_percentage,
        "deployments": [deployment],
        "pricing_options": [
            {
                "pricing_option_id": signals.pricing_option_id(s),
                "model": "cpm",
                "cpm": s.cpm,
                "currency": "USD",
            }
        ],
    }
    if s.signal_type == "contextual":
        out["methodology"] = "derived"
    return out
