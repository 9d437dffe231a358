"""The conductor: opens one MCP session per buyer, runs each act of the journeys for
every buyer at once, and moves the shared simulated clock between acts (the only one
who does), then gathers the result."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from simulations.buyer import BuyerSession
from simulations.errors import JourneyFailed
from simulations.journey import BuyerJourney
from simulations.progress import ProgressView
from simulations.records import Flight, iso
from simulations.report import RunInfo, build_result
from simulations.scenarios import Scenario, plan_for
from simulations.server import AdminApi
from simulations.turns import Turns

DEMO_TENANT = "demo"


@dataclass(frozen=True)
class Target:
    """Where the journeys run: the server's URL, the first buyer's token, the admin key
    (None: initialise it, which only a fresh server allows)."""

    base_url: str
    token: str
    admin_key: str | None
    started_here: bool


@dataclass(frozen=True)
class Options:
    scenario: Scenario
    seed: int
    buyers: int
    days: int


async def _each(
    journeys: list[BuyerJourney], act: Callable[[BuyerJourney], Awaitable[None]]
) -> None:
    """Run one act for every journey still going, concurrently; a failure ends that
    buyer's journey only."""

    async def guarded(journey: BuyerJourney) -> None:
        try:
            await act(journey)
        except JourneyFailed as exc:
            journey.failure = str(exc)

    await asyncio.gather(*(guarded(j) for j in journeys if j.failure is None))


def _day_detail(journeys: list[BuyerJourney], day: int) -> str:
    today = [d for j in journeys for b in j.buys for p in b.packages for d in p.days[-1:]]
    today = [d for d in today if d.day == day]
    imps, spend = sum(d.impressions for d in today), sum(d.spend for d in today)
    return f"{imps:,} impressions, {spend:,.2f} spent"


async def _tokens(admin: AdminApi, target: Target, buyers: int) -> list[str]:
    """The first buyer is the server's demo buyer. On a server of our own every other
    buyer is a principal of its own; on a given server they share the token (and keep
    to their own buys by id)."""
    tokens = [target.token]
    for i in range(2, buyers + 1):
        if target.started_here:
            tokens.append(await admin.create_principal(DEMO_TENANT, f"Simulated buyer {i}"))
        else:
            tokens.append(target.token)
    return tokens


async def simulate(target: Target, options: Options) -> dict[str, Any]:
    admin = AdminApi(target.base_url, target.admin_key)
    if admin.key is None:
        await admin.init_key()
    now = await admin.now()  # also refuses a server on the real clock
    flight = Flight.after(now, options.scenario.lead_days, options.days)
    tokens = await _tokens(admin, target, options.buyers)
    run_id = secrets.token_hex(3)
    phases: dict[str, float] = {}
    with ProgressView(total=options.days + 2) as progress:
        async with AsyncExitStack() as stack:
            journeys: list[BuyerJourney] = []
            turns = Turns()
            for i, token in enumerate(tokens, 1):
                url = f"{target.base_url}/mcp/"
                session = BuyerSession(f"buyer-{i}", url, token, on_step=progress.step)
                await stack.enter_async_context(session)
                plan = plan_for(options.scenario, options.seed, i)
                journeys.append(
                    BuyerJourney(
                        session.name,
                        options.scenario,
                        plan,
                        session,
                        admin,
                        flight,
                        run_id,
                        turns,
                        number=i,
                    )
                )
            started = time.perf_counter()
            await _each(journeys, lambda j: j.setup())
            phases["setup"] = round(time.perf_counter() - started, 3)
            progress.stage("setup", f"{sum(len(j.buys) for j in journeys)} buys booked")
            started = time.perf_counter()
            if any(j.failure is None for j in journeys):
                await admin.advance((flight.start - now).total_seconds() / 3600)
                for day in range(1, options.days + 1):
                    await admin.advance(24)
                    await _each(journeys, lambda j, d=day: j.on_day(d))  # type: ignore[misc]
                    progress.stage(f"day {day}/{options.days}", _day_detail(journeys, day))
            phases["flight"] = round(time.perf_counter() - started, 3)
            started = time.perf_counter()
            await _each(journeys, lambda j: j.finish())
            phases["report"] = round(time.perf_counter() - started, 3)
            progress.stage("report", "final reports read")
    info = RunInfo(
        options.scenario,
        options.seed,
        options.buyers,
        flight,
        run_id,
        target.base_url,
        target.started_here,
        iso(now),
        phases,
    )
    return build_result(info, journeys)
