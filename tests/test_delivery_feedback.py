"""Performance feedback that moves delivery, and real tracking events that replace the
simulation, over streamable HTTP and REST on a simulated clock."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastmcp import Client
from sqlmodel import select

from adcp_agent.db.engine import create_database
from adcp_agent.db.models_delivery import DeliveryHour, PerformanceFeedback
from tests.delivery_support import (
    SECOND_BUYER_TOKEN,
    SimServer,
    approve_and_push_creatives_directly,
    buy_args,
    key,
    ros,
    sim,
    sim_postgres,
    sim_sqlite,
)
from tests.support import DEMO_TOKEN, ToolCall, assert_valid, call, mcp_client

__all__ = ["sim", "sim_postgres", "sim_sqlite"]  # the module-scoped simulated-clock server fixture


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def _buy(client: Client, server: SimServer, packages: list[dict]) -> dict[str, Any]:
    created = await call(client, "create_media_buy", buy_args(await server.now(), packages))
    assert not created.is_error, created.data
    return created.data


async def _feedback(client: Client, **args: Any) -> ToolCall:
    result = await call(client, "provide_performance_feedback", args)
    assert_valid("provide_performance_feedback", result.data)
    return result


async def _spend_split(client: Client, media_buy_id: str) -> list[float]:
    result = await call(client, "get_media_buy_delivery", {"media_buy_ids": [media_buy_id]})
    assert_valid("get_media_buy_delivery", result.data)
    [d] = result.data["media_buy_deliveries"]
    return [p["spend"] for p in d["by_package"]]


async def test_package_feedback_shifts_delivery_toward_the_better_package(sim: SimServer) -> None:
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        steered = await _buy(c, sim, [ros(2000), ros(2000)])
        control = await _buy(c, sim, [ros(2000), ros(2000)])
        for buy in (steered, control):
            await approve_and_push_creatives_directly(sim.settings, buy["media_buy_id"])
        await sim.advance(24)
        now = await sim.now()
        good, poor = (p["package_id"] for p in steered["packages"])
        common = {
            "media_buy_id": steered["media_buy_id"],
            "measurement_period": {"start": _iso(now - timedelta(hours=24)), "end": _iso(now)},
            "metric_type": "conversion_rate",
            "feedback_source": "buyer_attribution",
        }
        ahead_key = key("ppf")
        ahead = await _feedback(
            c, **common, package_id=good, performance_index=1.5, idempotency_key=ahead_key
        )
        replay = await _feedback(
            c, **common, package_id=good, performance_index=1.5, idempotency_key=ahead_key
        )
        behind = await _feedback(
            c, **common, package_id=poor, performance_index=0.6, idempotency_key=key("ppf")
        )
        await sim.advance(48)
        steered_split = await _spend_split(c, steered["media_buy_id"])
        control_split = await _spend_split(c, control["media_buy_id"])
    assert ahead.data["success"] is True and ahead.data["feedback_status"] == "applied"
    assert "shifts toward" in ahead.data["message"]
    assert replay.data["replayed"] is True
    assert replay.data["feedback_id"] == ahead.data["feedback_id"]
    assert not behind.is_error
    share = steered_split[0] / sum(steered_split)
    control_share = control_split[0] / sum(control_split)
    assert abs(control_share - 0.5) < 0.05  # same seedless setup, no feedback: even split
    assert share > control_share + 0.12  # measurably toward the better package
    assert max(steered_split) <= 2000  # budgets stay hard limits
    db = create_database(sim.settings.resolved_database_url())
    try:
        async with db.session() as session:
            stored = (
                await session.exec(
                    select(PerformanceFeedback).where(
                        PerformanceFeedback.media_buy_id == steered["media_buy_id"]
                    )
                )
            ).all()
    finally:
        await db.dispose()
    assert sorted(f.performance_index for f in stored) == [0.6, 1.5]
    assert {f.status for f in stored} == {"applied"}


async def test_seed_feedback_types_become_an_index_and_errors_name_the_field(
    sim: SimServer,
) -> None:
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        single = await _buy(c, sim, [ros(1500)])
        mb, [pkg] = single["media_buy_id"], [p["package_id"] for p in single["packages"]]
        await approve_and_push_creatives_directly(sim.settings, mb)
        await sim.advance(24)
        [spent] = await _spend_split(c, mb)
        lift = await _feedback(
            c, media_buy_id=mb, feedback_type="brand_lift", data={"lift_percent": 7.5}
        )
        leads = await _feedback(
            c,
            media_buy_id=mb,
            package_id=pkg,
            feedback_type="lead_quality",
            data={"qualified_leads": 30, "total_leads": 50},
        )
        cpa = await _feedback(
            c,
            media_buy_id=mb,
            package_id=pkg,
            feedback_type="conversion_data",
            data={"conversions": 10, "target_cpa": round(spent / 10 * 1.2, 6)},
        )
        now = await sim.now()
        errors = {
            "unknown": await _feedback(c, media_buy_id="mb_nope", performance_index=1.0),
            "package": await _feedback(c, media_buy_id=mb, package_id="x", performance_index=1),
            "index": await _feedback(c, media_buy_id=mb),
            "metric": await _feedback(c, media_buy_id=mb, performance_index=1, metric_type="ctr"),
            "future": await _feedback(
                c,
                media_buy_id=mb,
                performance_index=1.0,
                measurement_period={
                    "start": _iso(now + timedelta(days=1)),
                    "end": _iso(now + timedelta(days=2)),
                },
            ),  # fmt: skip
            "cpa": await _feedback(
                c, media_buy_id=mb, feedback_type="conversion_data", data={"conversions": 3}
            ),
        }
    async with mcp_client(sim.mcp_url, SECOND_BUYER_TOKEN) as other:
        foreign = await _feedback(other, media_buy_id=mb, performance_index=1.0)
    assert lift.data["performance_index"] == 1.5
    assert lift.data["result"]["status"] == "accepted"  # the seed-002 answer shape
    assert "two auction packages" in lift.data["result"]["impact"]
    assert leads.data["performance_index"] == 1.2
    assert abs(cpa.data["performance_index"] - 1.2) < 0.01
    codes = {name: (r.error_codes, r.error.get("field")) for name, r in errors.items()}
    assert codes == {
        "unknown": (["MEDIA_BUY_NOT_FOUND"], "media_buy_id"),
        "package": (["PACKAGE_NOT_FOUND"], "package_id"),
        "index": (["INVALID_REQUEST"], "performance_index"),
        "metric": (["VALIDATION_ERROR"], "metric_type"),
        "future": (["INVALID_REQUEST"], "measurement_period.start"),
        "cpa": (["INVALID_REQUEST"], "data"),
    }
    assert foreign.error_codes == ["MEDIA_BUY_NOT_FOUND"]


async def test_tracking_events_count_once_and_replace_the_simulation(sim: SimServer) -> None:
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        created = await _buy(c, sim, [ros(1000)])
    mb, pkg = created["media_buy_id"], created["packages"][0]["package_id"]
    await sim.advance(2)
    when = await sim.now() - timedelta(minutes=30)
    event = {"event_id": "evt-1", "media_buy_id": mb, "package_id": pkg, "timestamp": _iso(when)}
    url = f"{sim.base_url}/api/v1/tracking"
    owner = {"authorization": f"Bearer {DEMO_TOKEN}"}
    async with httpx.AsyncClient() as http:

        async def post(
            kind: str, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> httpx.Response:
            sent = owner if headers is None else headers
            return await http.post(f"{url}/{kind}", json=body, headers=sent)

        first = await post("impression", event)
        duplicate = await post("impression", event)
        click = await post("click", event)
        problems = {
            "completion on display": await post("completion", {**event, "event_id": "e2"}),
            "foreign buyer": await post(
                "impression", {**event, "event_id": "e3"}, {"x-adcp-auth": SECOND_BUYER_TOKEN}
            ),
            "no token": await post("impression", {**event, "event_id": "e4"}, {}),
            "unknown kind": await post("bounce", {**event, "event_id": "e5"}),
            "naive time": await post(
                "impression", {**event, "event_id": "e6", "timestamp": _iso(when)[:-1]}
            ),
            "future": await post(
                "impression",
                {**event, "event_id": "e7", "timestamp": _iso(when + timedelta(hours=2))},
            ),
            "before flight": await post(
                "impression",
                {**event, "event_id": "e8", "timestamp": _iso(when - timedelta(days=3))},
            ),
            "unknown package": await post(
                "impression", {**event, "event_id": "e9", "package_id": "pkg_x"}
            ),
            "unknown field": await post("impression", {**event, "event_id": "e10", "ip": "x"}),
        }
    assert first.status_code == 201, first.text
    assert first.json()["billed"] == 0.004  # one impression at the 4.00 CPM bid
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "CONFLICT"
    assert click.status_code == 201  # ids are unique per kind: a click may reuse it
    statuses = {name: (r.status_code, r.json()["error"]["code"]) for name, r in problems.items()}
    assert statuses == {
        "completion on display": (422, "VALIDATION_ERROR"),
        "foreign buyer": (404, "MEDIA_BUY_NOT_FOUND"),
        "no token": (401, "AUTH_REQUIRED"),
        "unknown kind": (404, "NOT_FOUND"),
        "naive time": (422, "VALIDATION_ERROR"),
        "future": (422, "VALIDATION_ERROR"),
        "before flight": (422, "VALIDATION_ERROR"),
        "unknown package": (404, "PACKAGE_NOT_FOUND"),
        "unknown field": (422, "VALIDATION_ERROR"),
    }
    # The package is now measured by real events: the simulator no longer adds to it.
    await approve_and_push_creatives_directly(sim.settings, mb)
    await sim.advance(24)
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        result = await call(c, "get_media_buy_delivery", {"media_buy_ids": [mb]})
    assert_valid("get_media_buy_delivery", result.data)
    [d] = result.data["media_buy_deliveries"]
    assert (d["totals"]["impressions"], d["totals"]["clicks"]) == (1, 1)
    assert d["totals"]["spend"] == 0.0  # 0.004 rounds to zero cents on the wire
    assert d["ext"]["delivery_sources"] == ["tracking"]


async def test_a_burst_of_tracking_events_commits_each_once_and_caps_at_the_budget(
    sim: SimServer,
) -> None:
    """Events arriving together share commits (group commit, one savepoint each): every
    unique event is counted once, every replay in the burst is refused alone, and the
    budget cap holds across events of one batch."""
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        created = await _buy(c, sim, [ros(1000)])
    mb, pkg = created["media_buy_id"], created["packages"][0]["package_id"]
    await sim.advance(2)
    when = _iso(await sim.now() - timedelta(minutes=30))
    owner = {"authorization": f"Bearer {DEMO_TOKEN}"}
    ids = [f"burst-{i}" for i in range(30)] + [f"burst-{i}" for i in range(0, 30, 6)]
    async with httpx.AsyncClient(timeout=60) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    f"{sim.base_url}/api/v1/tracking/impression",
                    json={
                        "event_id": i,
                        "media_buy_id": mb,
                        "package_id": pkg,
                        "timestamp": when,
                        "cost": 60,
                    },  # fmt: skip
                    headers=owner,
                )
                for i in ids
            )
        )
    by_id: dict[str, list[int]] = {}
    billed: list[float] = []
    for event_id, answer in zip(ids, answers, strict=True):
        by_id.setdefault(event_id, []).append(answer.status_code)
        if answer.status_code == 201:
            billed.append(answer.json()["billed"])
        else:
            assert answer.json()["error"]["code"] == "CONFLICT", answer.text
    assert all(sorted(codes) in ([201], [201, 409]) for codes in by_id.values()), by_id
    assert sum(len(codes) == 2 for codes in by_id.values()) == 5
    # 30 events of 60 against a budget of 1,000: 16 full, one partial 40, the rest 0.
    assert sorted(billed, reverse=True)[:18] == [60.0] * 16 + [40.0, 0.0]
    assert sum(billed) == 1000.0
    db = create_database(sim.settings.resolved_database_url())
    try:
        async with db.session() as session:
            hours = (
                await session.exec(select(DeliveryHour).where(DeliveryHour.package_id == pkg))
            ).all()
    finally:
        await db.dispose()
    tracked = [h for h in hours if h.source == "tracking"]
    assert sum(h.impressions for h in tracked) == 30
    assert round(sum(h.spend for h in tracked), 6) == 1000.0
