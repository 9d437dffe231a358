"""Performance feedback from buyers: AdCP ``provide_performance_feedback`` and the
seed-002 feedback types, stored per buy, package and measurement period.

Feedback steers delivery when the buy allows optimisation (see ``optimisation``): from
the moment it arrives, the simulator shifts delivery toward the packages with the better
index; hours already delivered stay as they were. Otherwise it is recorded and
acknowledged as ``accepted``, and the response says why nothing moved.

Seed-002 types become a performance index (1.0 = as expected); each may also state
``performance_index`` directly:
- ``conversion_data`` {conversions, expected_conversions | target_cpa}: conversions ÷
  expected, or target CPA ÷ actual CPA (the period's delivered spend ÷ conversions);
- ``lead_quality`` {quality_score 0–10, 5 expected | qualified_leads, total_leads,
  expected_qualified_rate = 0.5};
- ``brand_lift`` {lift_percent, benchmark_percent = 5}: lift ÷ benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from adcp_agent.db.models_delivery import DeliveryHour, PerformanceFeedback
from adcp_agent.db.models_media import MediaBuy, Package
from adcp_agent.errors import AdcpError
from adcp_agent.services import audit, delivery, media_updates, optimisation
from adcp_agent.services.idempotency import Completion
from adcp_agent.services.identity import Caller, new_id
from adcp_agent.state import AppState

METRIC_TYPES = (
    "overall_performance",
    "conversion_rate",
    "brand_lift",
    "click_through_rate",
    "completion_rate",
    "viewability",
    "brand_safety",
    "cost_efficiency",
)
SOURCES = (
    "buyer_attribution",
    "third_party_measurement",
    "platform_analytics",
    "verification_partner",
)
SEED_TYPES = {
    "conversion_data": "conversion_rate",
    "lead_quality": "overall_performance",
    "brand_lift": "brand_lift",
}
MAX_INDEX = 100.0


@dataclass(frozen=True)
class FeedbackRequest:
    media_buy_id: str
    performance_index: float | None = None
    package_id: str | None = None
    creative_id: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    metric_type: str | None = None
    feedback_source: str | None = None
    feedback_type: str | None = None  # seed-002
    data: dict[str, Any] | None = None  # seed-002


@dataclass(frozen=True)
class FeedbackOutcome:
    feedback: PerformanceFeedback
    impact: str
    weights: dict[str, float]


Render = Callable[[FeedbackOutcome], dict[str, Any]]


def _number(data: dict[str, Any], key: str, *, required: bool = False) -> float | None:
    value = data.get(key)
    if value is None:
        if required:
            raise AdcpError("INVALID_REQUEST", f"'data.{key}' is required.", field=f"data.{key}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise AdcpError(
            "VALIDATION_ERROR", f"'data.{key}' must be a number ≥ 0.", field=f"data.{key}"
        )
    return float(value)


async def _period_spend(
    state: AppState, buy: MediaBuy, package_id: str | None, start: datetime, end: datetime
) -> float:
    async with state.db.reading() as session:
        stmt = select(func.coalesce(func.sum(DeliveryHour.spend), 0.0)).where(
            DeliveryHour.media_buy_id == buy.media_buy_id,
            DeliveryHour.hour >= start,
            DeliveryHour.hour < end,
        )
        if package_id:
            stmt = stmt.where(DeliveryHour.package_id == package_id)
        return float((await session.exec(stmt)).one())


async def seed_index(
    state: AppState, req: FeedbackRequest, buy: MediaBuy, start: datetime, end: datetime
) -> float:
    """The performance index a seed-002 feedback type stands for."""
    data = req.data or {}
    direct = _number(data, "performance_index")
    if direct is not None:
        return direct
    if req.feedback_type == "conversion_data":
        conversions = _number(data, "conversions", required=True) or 0.0
        expected = _number(data, "expected_conversions")
        if expected:
            return conversions / expected
        target_cpa = _number(data, "target_cpa")
        if not target_cpa:
            raise AdcpError(
                "INVALID_REQUEST",
                "conversion_data needs expected_conversions or target_cpa to judge "
                "the conversions against.",
                field="data",
            )
        spend = await _period_spend(state, buy, req.package_id, start, end)
        if spend <= 0:
            raise AdcpError(
                "INVALID_REQUEST",
                "Nothing was delivered in the measurement period, so there is no CPA yet.",
                field="data.target_cpa",
            )
        return target_cpa / (spend / conversions) if conversions else 0.0
    if req.feedback_type == "lead_quality":
        score = _number(data, "quality_score")
        if score is not None:
            if score > 10:
                raise AdcpError(
                    "VALIDATION_ERROR", "quality_score runs from 0 to 10.", field="data"
                )
            return score / 5
        qualified = _number(data, "qualified_leads", required=True) or 0.0
        total = _number(data, "total_leads", required=True) or 0.0
        if total <= 0 or qualified > total:
            raise AdcpError(
                "VALIDATION_ERROR",
                "qualified_leads must be between 0 and total_leads (> 0).",
                field="data.qualified_leads",
            )
        return (qualified / total) / (_number(data, "expected_qualified_rate") or 0.5)
    lift = data.get("lift_percent")
    if isinstance(lift, bool) or not isinstance(lift, int | float):
        raise AdcpError(
            "INVALID_REQUEST", "'data.lift_percent' (a number) is required.", field="data"
        )
    return max(float(lift), 0.0) / (_number(data, "benchmark_percent") or 5.0)


def _impact(package: Package | None, movable: list[Package], weights: dict[str, float]) -> str:
    if package is not None and package.package_id in {p.package_id for p in movable}:
        shifts = ", ".join(f"{pid} x{w:.2f}" for pid, w in sorted(weights.items()))
        return (
            "Applied: from now on delivery shifts toward the better-performing auction "
            f"packages ({shifts}); budgets stay as booked."
        )
    if package is not None and package.guaranteed:
        return (
            f"Recorded. {package.package_id} is guaranteed: it keeps delivering its "
            "contracted goal, so delivery is unchanged."
        )
    if not movable:
        return (
            "Recorded. Optimisation needs at least two auction packages in the buy; this "
            "one has nothing to shift delivery between."
        )
    return "Recorded for the whole buy. Send package_id to steer delivery between packages."


async def provide(
    state: AppState,
    caller: Caller,
    req: FeedbackRequest,
    *,
    completion: Completion,
    render: Render,
) -> dict[str, Any]:
    now = state.clock.now()
    buy, packages = await media_updates.load_buy(state, caller, req.media_buy_id, None)
    package = None
    if req.package_id is not None:
        package = next((p for p in packages if p.package_id == req.package_id), None)
        if package is None:
            raise AdcpError(
                "PACKAGE_NOT_FOUND",
                f"Package '{req.package_id}' is not part of media buy '{buy.media_buy_id}'.",
                field="package_id",
            )
    start = req.period_start or buy.start_time
    end = req.period_end or min(now, buy.end_time)
    if end <= start:
        raise AdcpError(
            "VALIDATION_ERROR",
            "measurement_period must end after it starts.",
            field="measurement_period.end",
        )
    if start >= now:
        raise AdcpError(
            "INVALID_REQUEST",
            f"measurement_period starts at {start.isoformat()}, after the latest delivery "
            f"data ({now.isoformat()}).",
            field="measurement_period.start",
        )
    metric = req.metric_type or SEED_TYPES.get(req.feedback_type or "", "overall_performance")
    if metric not in METRIC_TYPES:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"Unknown metric_type '{metric}'.",
            field="metric_type",
            suggestion=f"Use one of: {', '.join(METRIC_TYPES)}.",
        )
    source = req.feedback_source or "buyer_attribution"
    if source not in SOURCES:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"Unknown feedback_source '{source}'.",
            field="feedback_source",
            suggestion=f"Use one of: {', '.join(SOURCES)}.",
        )
    if req.feedback_type is not None:
        index = await seed_index(state, req, buy, start, end)
    elif req.performance_index is None:
        raise AdcpError(
            "INVALID_REQUEST",
            "'performance_index' is required (or the seed's feedback_type with data).",
            field="performance_index",
        )
    else:
        index = req.performance_index
    if not 0 <= index <= MAX_INDEX:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"performance_index must be between 0 and {MAX_INDEX:g} (1.0 = as expected).",
            field="performance_index",
        )
    # Hours so far delivered without this feedback: close them first.
    await delivery.close_hours(state, buy, now)
    movable = optimisation.optimisable(packages)
    async with state.db.transaction() as session:
        earlier = list(
            (
                await session.exec(
                    select(PerformanceFeedback)
                    .where(PerformanceFeedback.media_buy_id == buy.media_buy_id)
                    .order_by(col(PerformanceFeedback.received_at))
                )
            ).all()
        )
        row = PerformanceFeedback(
            feedback_id=new_id("fb"),
            tenant_id=buy.tenant_id,
            principal_id=buy.principal_id,
            media_buy_id=buy.media_buy_id,
            package_id=req.package_id,
            creative_id=req.creative_id,
            period_start=start,
            period_end=end,
            performance_index=round(index, 4),
            metric_type=metric,
            feedback_source=source,
            feedback_type=req.feedback_type,
            data=req.data or {},
            status="applied" if req.package_id in {p.package_id for p in movable} else "accepted",
            received_at=now,
        )
        session.add(row)
        weights = optimisation.weights(packages, [*earlier, row], now)
        await audit.record(
            session,
            caller,
            "media_buy.performance_feedback",
            target_type="media_buy",
            target_id=buy.media_buy_id,
            details={
                "feedback_id": row.feedback_id,
                "package_id": req.package_id,
                "performance_index": row.performance_index,
                "status": row.status,
            },
        )
        response = render(FeedbackOutcome(row, _impact(package, movable, weights), weights))
        await completion.mark(session, response)
    return response
