"""Real event tracking and pacing alerts over REST, for event sources and dashboards.

``POST /api/v1/tracking/{impression|click|completion}`` records one event (201), or
answers 409 when its ``event_id`` was already recorded for that kind.
``GET /api/v1/pacing/alerts[?media_buy_id=…]`` lists the caller's pacing alerts.
Both authenticate with the buyer's token, exactly like MCP (``Authorization: Bearer``
or ``x-adcp-auth``), and see only the caller's own media buys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adcp_agent.errors import AdcpError
from adcp_agent.rest.http_io import app_state, authenticated_caller, endpoint, read_model
from adcp_agent.services import delivery, media_reads, pacing, tracking


class TrackingEventBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=200, description="Unique per event kind.")
    media_buy_id: str = Field(min_length=1, max_length=64)
    package_id: str = Field(min_length=1, max_length=64)
    timestamp: AwareDatetime = Field(description="When it happened (ISO 8601 with zone).")
    cost: float | None = Field(
        default=None, ge=0, description="Billed amount; default: the package's unit price."
    )
    creative_id: str | None = Field(default=None, max_length=128)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Kept, not read.")


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@endpoint
async def track(request: Request) -> Response:
    kind = request.path_params["kind"]
    if kind not in tracking.KINDS:
        raise AdcpError(
            "NOT_FOUND",
            f"Unknown event kind '{kind}'.",
            suggestion="POST to /api/v1/tracking/impression, /click or /completion.",
        )
    caller = await authenticated_caller(request)
    body = await read_model(request, TrackingEventBody)
    recorded = await tracking.record(
        app_state(request),
        caller,
        tracking.EventIn(
            kind=kind,
            event_id=body.event_id,
            media_buy_id=body.media_buy_id,
            package_id=body.package_id,
            timestamp=body.timestamp,
            cost=body.cost,
            creative_id=body.creative_id,
            metadata=body.metadata,
        ),
    )
    event = recorded.event
    return JSONResponse(
        {
            "status": "recorded",
            "kind": event.kind,
            "event_id": event.event_id,
            "media_buy_id": event.media_buy_id,
            "package_id": event.package_id,
            "hour": _iso(recorded.hour),
            "billed": round(recorded.billed, 6),
        },
        status_code=201,
    )


@endpoint
async def pacing_alerts(request: Request) -> Response:
    state = app_state(request)
    caller = await authenticated_caller(request)
    wanted = request.query_params.get("media_buy_id")
    views, missing = await media_reads.list_buys(
        state, caller, media_buy_ids=[wanted] if wanted else [], now=state.clock.now()
    )
    if missing:
        raise AdcpError(
            "MEDIA_BUY_NOT_FOUND", f"Media buy '{wanted}' was not found.", field="media_buy_id"
        )
    for view in views:
        await delivery.catch_up(state, view.buy)
    rows = await pacing.alerts(state.db, media_buy_ids=[v.buy.media_buy_id for v in views])
    return JSONResponse({"alerts": [pacing.alert_view(a) for a in rows]})


def tracking_routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/tracking/{kind}", track, methods=["POST"]),
        Route("/api/v1/pacing/alerts", pacing_alerts, methods=["GET"]),
    ]
