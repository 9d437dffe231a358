"""AdCP daypart targets (targeting_overlay.daypart_targets: days and hours): validated,
echoed, served only in their hours by the simulated ad server, narrowing avails by the
traffic of those hours, and sent to GAM as DayPartTargeting (Kevel and Triton, which
take only their own named dayparts, refuse them before anything is booked)."""

from __future__ import annotations

from datetime import datetime

import pytest
from adcp_agent_adapters.kevel.mapping import targeting_fields
from adcp_agent_adapters.triton.adapter import targeting_body
from sqlmodel import select

from adcp_agent.adapter_protocol import DaypartWindow, Targeting
from adcp_agent.db.engine import create_database
from adcp_agent.db.models import Product
from adcp_agent.errors import AdcpError
from adcp_agent.services.delivery_sim import DIURNAL
from adcp_agent.services.pacing import elapsed_fraction, week_hours
from tests.delivery_support import (
    SimServer,
    approve_and_push_creatives_directly,
    buy_args,
    ros,
    sim,
    sim_postgres,
    sim_sqlite,
)
from tests.media_helpers import avails_args
from tests.support import DEMO_TOKEN, assert_valid, call, mcp_client

__all__ = ["sim", "sim_postgres", "sim_sqlite"]  # the module-scoped simulated-clock server

ALL_WEEK = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
EVENINGS = [{"days": ALL_WEEK, "start_hour": 18, "end_hour": 22, "label": "Prime"}]


async def _allow_dayparts(sim: SimServer) -> None:
    """The demo's run-of-site display, as a publisher whose ad server dayparts it."""
    db = create_database(sim.settings.resolved_database_url())
    try:
        async with db.transaction() as session:
            product = (
                await session.exec(
                    select(Product).where(
                        Product.tenant_id == "demo", Product.product_id == "display_run_of_site"
                    )
                )
            ).one()
            if "daypart" not in product.targeting:
                product.targeting = [*product.targeting, "daypart"]
                session.add(product)
    finally:
        await db.dispose()


async def test_a_dayparted_package_serves_only_in_its_hours(sim: SimServer) -> None:
    await _allow_dayparts(sim)
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        now = await sim.now()
        overlay = {"daypart_targets": EVENINGS}
        created = await call(
            c, "create_media_buy", buy_args(now, [ros(1000, targeting_overlay=overlay)])
        )
        assert not created.is_error, created.data
        mb = created.data["media_buy_id"]
        everyone = await call(c, "get_avails", avails_args(now=now, days=7))
        evenings = await call(c, "get_avails", avails_args(overlay, now=now, days=7))
        await approve_and_push_creatives_directly(sim.settings, mb)
        await sim.advance(30)
        until = await sim.now()
        listed = await call(c, "get_media_buys", {"media_buy_ids": [mb]})
        hourly = await call(
            c,
            "get_media_buy_delivery",
            {"media_buy_ids": [mb], "time_granularity": "hourly", "include_window_breakdown": True},
        )
    assert_valid("get_media_buys", listed.data)
    assert listed.data["media_buys"][0]["packages"][0]["targeting_overlay"] == overlay
    served = {
        datetime.fromisoformat(w["window_start"].replace("Z", "+00:00")).hour
        for w in hourly.data["media_buy_deliveries"][0]["windows"]
        if w["totals"]["impressions"] > 0
    }
    assert served and served <= {18, 19, 20, 21}, served
    # Its budget is paced over the hours it serves, not over the whole flight: by now it
    # has spent about the share of its evenings that have passed.
    package = listed.data["media_buys"][0]["packages"][0]
    flight = [
        datetime.fromisoformat(package[k].replace("Z", "+00:00"))
        for k in ("start_time", "end_time")
    ]
    spent = hourly.data["media_buy_deliveries"][0]["totals"]["spend"]
    expected = 1000 * elapsed_fraction(*flight, until, week_hours(overlay))
    assert 0.75 * expected <= spent <= 1.25 * expected, (spent, expected)
    share = sum(DIURNAL[18:22]) / sum(DIURNAL)
    all_of_it = everyone.data["packages"][0]["available_impressions"]
    assert abs(evenings.data["packages"][0]["available_impressions"] - all_of_it * share) <= 2


async def test_bad_daypart_targets_are_refused_naming_the_field(sim: SimServer) -> None:
    await _allow_dayparts(sim)
    cases = {
        "[0].days": {"days": ["mon"], "start_hour": 6, "end_hour": 10},
        "[0].end_hour": {"days": ["monday"], "start_hour": 10, "end_hour": 10},
        "[0].start_hour": {"days": ["monday"], "start_hour": 24, "end_hour": 24},
        "[0]": {"days": ["monday"], "start_hour": 6, "end_hour": 10, "timezone": "UTC"},
    }
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        now = await sim.now()
        answers = {
            where: await call(
                c,
                "create_media_buy",
                buy_args(now, [ros(targeting_overlay={"daypart_targets": [window]})]),
            )
            for where, window in cases.items()
        }
    for where, answer in answers.items():
        assert answer.error_codes == ["VALIDATION_ERROR"], answer.data
        assert answer.error["field"] == f"packages[0].targeting_overlay.daypart_targets{where}"


def test_kevel_and_triton_refuse_daypart_targets() -> None:
    windows = (DaypartWindow(("monday",), 6, 10),)
    for refuse in (lambda t: targeting_fields(t, {}, [], 7), targeting_body):
        with pytest.raises(AdcpError) as err:
            refuse(Targeting(daypart_windows=windows))
        assert (err.value.code, err.value.field) == (
            "UNSUPPORTED_FEATURE",
            "targeting.daypart_targets",
        )
