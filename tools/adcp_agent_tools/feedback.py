"""provide_performance_feedback: AdCP 3.1 and the seed-002 feedback types."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from pydantic import Field

from adcp_agent.services import feedback as feedback_service
from adcp_agent.services import idempotency
from adcp_agent.state import AppState
from adcp_agent_tools.caller import current_caller
from adcp_agent_tools.media import MUTATES
from adcp_agent_tools.media_wire import as_result
from adcp_agent_tools.params import IdempotencyKey, _Open
from adcp_agent_tools.results import adcp_errors_as_results
from adcp_agent_tools.times import parse_time


class MeasurementPeriod(_Open):
    start: str = Field(description="ISO 8601 date-time with zone.")
    end: str = Field(description="ISO 8601 date-time with zone.")


def register(mcp: FastMCP, state: AppState) -> None:
    def render(outcome: feedback_service.FeedbackOutcome) -> dict[str, Any]:
        row = outcome.feedback
        out: dict[str, Any] = {
            "status": "completed",
            "success": True,
            "message": outcome.impact,
            "feedback_id": row.feedback_id,
            "feedback_status": row.status,
            "performance_index": row.performance_index,
        }
        if row.feedback_type is not None:  # the seed-002 answer shape, too
            out["result"] = {
                "feedback_id": row.feedback_id,
                "media_buy_id": row.media_buy_id,
                "status": row.status,
                "impact": outcome.impact,
            }
        return out

    @mcp.tool(name="provide_performance_feedback", annotations=MUTATES, output_schema=None)
    @adcp_errors_as_results
    async def provide_performance_feedback(
        media_buy_id: Annotated[str, Field(min_length=1)],
        performance_index: Annotated[
            float | None,
            Field(ge=0, description="1.0 = as expected, 1.4 = 40% better, 0.6 = 40% worse."),
        ] = None,
        measurement_period: Annotated[
            MeasurementPeriod | None,
            Field(description="{start, end}; default: the flight so far."),
        ] = None,
        package_id: Annotated[
            str | None, Field(description="Give it: package-level feedback steers delivery.")
        ] = None,
        creative_id: str | None = None,
        metric_type: Annotated[
            str | None,
            Field(
                description="overall_performance | conversion_rate | brand_lift | "
                "click_through_rate | completion_rate | viewability | brand_safety | "
                "cost_efficiency."
            ),
        ] = None,
        feedback_source: Annotated[
            str | None,
            Field(
                description="buyer_attribution | third_party_measurement | "
                "platform_analytics | verification_partner."
            ),
        ] = None,
        feedback_type: Annotated[
            Literal["conversion_data", "lead_quality", "brand_lift"] | None,
            Field(description="Seed-002 form, with data instead of performance_index."),
        ] = None,
        data: Annotated[
            dict[str, Any] | None,
            Field(
                description="Seed-002: conversion_data {conversions, expected_conversions | "
                "target_cpa}; lead_quality {quality_score 0-10 | qualified_leads, "
                "total_leads}; brand_lift {lift_percent, benchmark_percent?}."
            ),
        ] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> ToolResult:
        """Tell the seller how a media buy (or one package) performs for you. In a buy with
        two or more auction packages, package-level feedback shifts delivery toward the
        better performers from now on (budgets stay as booked); otherwise it is recorded.
        The answer says what changed. Example: {media_buy_id: 'mb_…', package_id:
        'pkg_…', performance_index: 1.3, metric_type: 'conversion_rate',
        measurement_period: {start: '2027-03-01T00:00:00Z', end: '2027-03-07T23:59:59Z'},
        idempotency_key: '<16+ chars>'}. Seed form: {media_buy_id, feedback_type:
        'brand_lift', data: {lift_percent: 7.5}}."""
        caller = current_caller()
        req = feedback_service.FeedbackRequest(
            media_buy_id=media_buy_id,
            performance_index=performance_index,
            package_id=package_id,
            creative_id=creative_id,
            period_start=parse_time(measurement_period.start, "measurement_period.start")
            if measurement_period
            else None,
            period_end=parse_time(measurement_period.end, "measurement_period.end")
            if measurement_period
            else None,
            metric_type=metric_type,
            feedback_source=feedback_source,
            feedback_type=feedback_type,
            data=data,
        )
        raw = {
            "media_buy_id": media_buy_id,
            "performance_index": performance_index,
            "measurement_period": measurement_period.model_dump(mode="json")
            if measurement_period
            else None,
            "package_id": package_id,
            "creative_id": creative_id,
            "metric_type": metric_type,
            "feedback_source": feedback_source,
            "feedback_type": feedback_type,
            "data": data,
        }
        response = await idempotency.run_once(
            state.db,
            caller,
            "provide_performance_feedback",
            idempotency_key,
            raw,
            lambda completion: feedback_service.provide(
                state, caller, req, completion=completion, render=render
            ),
        )
        return as_result(response)
