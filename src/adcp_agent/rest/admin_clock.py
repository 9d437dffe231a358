"""The simulated clock, for tests and simulations (admin API key required):
``GET /clock`` shows it, ``POST /clock/advance {"hours": 24}`` moves it forward and
materialises the delivery of every running simulated buy up to the new time. A server
on the real clock refuses to advance: time there is not ours to move."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adcp_agent.clock import SimulatedClock
from adcp_agent.errors import AdcpError
from adcp_agent.rest.admin_http import admin_route, ok, read_body
from adcp_agent.services import audit, delivery
from adcp_agent.state import AppState

MAX_HOURS = 24 * 366


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hours: float = Field(gt=0, le=MAX_HOURS, description="How far to move the clock.")


class ClockView(BaseModel):
    now: datetime
    simulated: bool
    previous: datetime | None = None
    media_buys_caught_up: int | None = None


def clock_routes(state: AppState) -> list[Route]:
    async def show(request: Request) -> Response:
        return ok(ClockView(now=state.clock.now(), simulated=state.clock.simulated))

    async def advance(request: Request) -> Response:
        body = await read_body(request, ClockAdvance)
        clock = state.clock
        if not isinstance(clock, SimulatedClock):
            raise AdcpError(
                "INVALID_STATE",
                "This server runs on the real clock, which cannot be advanced.",
                suggestion="Start it with 'adcp-agent serve --sim-clock' (or "
                "ADCP_AGENT_SIM_CLOCK=true) to simulate time.",
                http_status=409,
            )
        previous = clock.now()
        now = clock.advance(timedelta(hours=body.hours))
        caught_up = await delivery.catch_up_all(state, now)
        async with state.db.transaction() as session:
            await audit.record(
                session,
                None,
                "clock.advance",
                actor="admin",
                target_type="clock",
                details={"from": previous.isoformat(), "to": now.isoformat()},
            )
        return ok(
            ClockView(now=now, simulated=True, previous=previous, media_buys_caught_up=caught_up)
        )

    return [
        admin_route("/clock", state, {"GET": show}),
        admin_route("/clock/advance", state, {"POST": advance}),
    ]
