"""The packages and webhooks create_media_buy takes (and update_media_buy: its
new_packages are create_media_buy packages)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from adcp_agent.services import media_buys as buys
from adcp_agent_tools.creatives import CreativeAsset
from adcp_agent_tools.params import FormatRef, _Open
from adcp_agent_tools.times import parse_time

REPORTING_WEBHOOK = (
    "Scheduled delivery reports POSTed to you: {url, reporting_frequency: 'hourly'|"
    "'daily', authentication: {schemes: ['Bearer'|'HMAC-SHA256'], credentials}, token?, "
    "requested_metrics?}; each closed period's get_media_buy_delivery report, numbered, "
    "the last one 'final'."
)


class CreativeAssignment(_Open):
    creative_id: str
    weight: float | None = None


class PackageIn(_Open):
    product_id: str = Field(min_length=1)
    budget: float = Field(description="Package budget in the buy's currency.")
    pricing_option_id: str | None = None
    bid_price: float | None = Field(default=None, gt=0)
    impressions: int | None = Field(default=None, gt=0)
    pacing: Literal["even", "asap", "front_loaded"] | None = None
    targeting_overlay: dict[str, Any] | None = None
    creative_assignments: list[CreativeAssignment] | None = None
    creative_ids: list[str] | None = None
    format_ids: list[FormatRef] | None = None
    buyer_ref: str | None = None
    context: dict[str, Any] | None = None
    start_time: str | None = Field(
        default=None, description="A flight of its own inside the buy's (ISO 8601 with zone)."
    )
    end_time: str | None = Field(default=None, description="Its own end, inside the buy's.")
    paused: bool = Field(default=False, description="Book it paused (auction packages).")
    optimization_goals: list[Any] | None = Field(
        default=None,
        description="Up to 3 metric goals: {kind: 'metric', metric: clicks | views | "
        "completed_views (as the product's metric_optimization lists), target?: {kind: "
        "cost_per | threshold_rate, value}, priority?}; the primary one steers delivery.",
    )
    creatives: list[CreativeAsset] | None = Field(
        default=None,
        max_length=100,
        description="Creatives sent inline (as sync_creatives takes them): they enter your "
        "library and are assigned to this package.",
    )


def package_request(p: PackageIn, where: str) -> buys.PackageRequest:
    """A package as create_media_buy and update_media_buy's new_packages send it."""
    return buys.PackageRequest(
        product_id=p.product_id,
        budget=p.budget,
        pricing_option_id=p.pricing_option_id,
        bid_price=p.bid_price,
        impressions=p.impressions,
        pacing=p.pacing,
        targeting=p.targeting_overlay,
        creative_ids=[a.creative_id for a in p.creative_assignments or []]
        + list(p.creative_ids or [])
        + [c.creative_id for c in p.creatives or []],
        format_ids=[f.id for f in p.format_ids] if p.format_ids else None,
        buyer_ref=p.buyer_ref or (p.context or {}).get("buyer_ref"),
        start_time=parse_time(p.start_time, f"{where}.start_time") if p.start_time else None,
        end_time=parse_time(p.end_time, f"{where}.end_time") if p.end_time else None,
        paused=p.paused,
        optimization_goals=p.optimization_goals,
    )


def inline_groups(packages: list[PackageIn], prefix: str) -> list[tuple[str, list[CreativeAsset]]]:
    """Each package's inline creatives with its place in the request (``packages[1]``)."""
    return [(f"{prefix}[{i}]", p.creatives) for i, p in enumerate(packages) if p.creatives]
