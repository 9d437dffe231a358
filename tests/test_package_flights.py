"""Packages with flights of their own inside their buy's (AdCP package start_time /
end_time) and packages booked paused: the ad server's lines run them, guaranteed
inventory is reserved in the package's own window, delivery and pacing follow it, and
moving the buy's dates keeps each package inside."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests import host_reads
from tests.delivery_support import (
    SimServer,
    approve_and_push_creatives_directly,
    buy_args,
    ros,
    sim,
    sim_postgres,
    sim_sqlite,
)
from tests.media_helpers import key, non_guaranteed, whole_days
from tests.support import DEMO_TOKEN, LiveServer, assert_valid, call, mcp_client

__all__ = ["sim", "sim_postgres", "sim_sqlite"]

HOST_READ = {"product_id": "podcast_host_read", "pricing_option_id": "host_read_cpm"}


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_guaranteed_package_reserves_only_its_own_week(live: LiveServer) -> None:
    month_avails, month = whole_days("podcast_host_read", 860, days=30)
    week_avails, week = whole_days("podcast_host_read", 870, days=7)
    later_avails, _ = whole_days("podcast_host_read", 880, days=7)
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        in_week = await host_reads.available(c, week_avails)
        later = await host_reads.available(c, later_avails)
        package = {**HOST_READ, "budget": host_reads.budget(in_week, 0.8), **week}
        booked = await call(c, "create_media_buy", host_reads.request(0, month) | {
            "packages": [package]})  # fmt: skip
        in_week_after = await host_reads.available(c, week_avails)
        later_after = await host_reads.available(c, later_avails)
        again = await call(
            c,
            "create_media_buy",
            host_reads.request(host_reads.budget(in_week, 0.5), week),
        )
    assert not booked.is_error, booked.data
    assert_valid("create_media_buy", booked.data)
    # 0.8 of the week is taken in that week, not spread over the month...
    assert abs(in_week_after - in_week * 0.2) < in_week * 0.02, (in_week, in_week_after)
    assert later_after == later  # ...and the other weeks keep what they had
    assert again.error_codes == ["PRODUCT_UNAVAILABLE"], again.data
    [order] = host_reads.mock_orders_in(live, month)  # awaiting approval: no id shown yet
    [line] = order.lines.values()
    assert (line.spec.start, line.spec.end) == (_at(week["start_time"]), _at(week["end_time"]))
    assert order.spec.end == _at(month["end_time"]) and month_avails


async def test_auction_packages_run_their_own_flights_and_may_start_paused(
    live: LiveServer,
) -> None:
    args = non_guaranteed(budget=1000)
    start, end = _at(args["start_time"]), _at(args["end_time"])
    own = {"start_time": (start + timedelta(days=2)).isoformat(),
           "end_time": (start + timedelta(days=5)).isoformat()}  # fmt: skip
    whole = args["packages"][0]
    args["packages"] = [whole, {**whole, **own}, {**whole, "paused": True}]
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        booked = await call(c, "create_media_buy", args)
        mb = booked.data["media_buy_id"]
        listed = await call(c, "get_media_buys", {"media_buy_ids": [mb]})
        ends_later = {**whole, "end_time": (end + timedelta(days=1)).isoformat()}
        outside = await call(c, "create_media_buy", {**args, "idempotency_key": key("o"),
                                                     "packages": [whole, ends_later]})  # fmt: skip
        backwards = await call(
            c,
            "create_media_buy",
            {**args, "idempotency_key": key("b"),
             "packages": [{**whole, "start_time": own["end_time"], "end_time": own["start_time"]}]},
        )  # fmt: skip
        held = await call(
            c,
            "create_media_buy",
            host_reads.request(6000, whole_days("podcast_host_read", 900, 7)[1])
            | {"packages": [{**HOST_READ, "budget": 6000, "paused": True}]},
        )
    assert not booked.is_error, booked.data
    first, second, third = booked.data["packages"]
    assert (second["start_time"], second["end_time"]) == (
        own["start_time"].replace("+00:00", "Z"),
        own["end_time"].replace("+00:00", "Z"),
    )
    assert first["end_time"] == args["end_time"].replace("+00:00", "Z")
    assert third["paused"] is True and first["paused"] is False
    [buy] = listed.data["media_buys"]
    assert [p["paused"] for p in buy["packages"]] == [False, False, True]
    [(_, order)] = host_reads.mock_orders(live, mb)
    lines = {line.spec.package_id: line for line in order.lines.values()}
    assert lines[second["package_id"]].spec.start == _at(own["start_time"])
    assert lines[second["package_id"]].spec.end == _at(own["end_time"])
    assert lines[third["package_id"]].status == "paused"
    assert lines[first["package_id"]].status != "paused"
    assert (outside.error_codes, outside.error["field"]) == (
        ["VALIDATION_ERROR"],
        "packages[1].end_time",
    )
    assert backwards.error_codes == ["VALIDATION_ERROR"], backwards.data
    assert (
        held.error_codes == ["UNSUPPORTED_FEATURE"] and held.error["field"] == "packages[0].paused"
    )


async def test_moving_the_buys_end_keeps_packages_inside(live: LiveServer) -> None:
    args = non_guaranteed(budget=1000)
    start, end = _at(args["start_time"]), _at(args["end_time"])
    whole = args["packages"][0]
    early = {**whole, "end_time": (start + timedelta(days=4)).isoformat()}
    late = {**whole, "start_time": (start + timedelta(days=8)).isoformat(),
            "end_time": (start + timedelta(days=12)).isoformat()}  # fmt: skip
    args["packages"] = [whole, early, late]
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        booked = await call(c, "create_media_buy", args)
        mb = booked.data["media_buy_id"]
        strands = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "end_time": (start + timedelta(days=7)).isoformat()},
        )
        shorter = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "end_time": (start + timedelta(days=10)).isoformat()},
        )
        [buy] = (await call(c, "get_media_buys", {"media_buy_ids": [mb]})).data["media_buys"]
    # the late package would have no time left: refused, nothing changed
    assert strands.error_codes == ["VALIDATION_ERROR"], strands.data
    assert not shorter.is_error, shorter.data
    new_end = (start + timedelta(days=10)).isoformat().replace("+00:00", "Z")
    ends = [p["end_time"] for p in buy["packages"]]
    assert ends == [new_end, early["end_time"].replace("+00:00", "Z"), new_end]
    [(_, order)] = host_reads.mock_orders(live, mb)
    line_ends = sorted(line.spec.end for line in order.lines.values())
    assert line_ends == [_at(early["end_time"]), _at(new_end), _at(new_end)]
    assert end > _at(new_end)


async def test_delivery_and_pacing_follow_the_package_flight(sim: SimServer) -> None:
    now = await sim.now()
    own = {"start_time": (now + timedelta(hours=24)).isoformat(),
           "end_time": (now + timedelta(hours=48)).isoformat()}  # fmt: skip
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        created = await call(
            c, "create_media_buy", buy_args(now, [ros(960), ros(960, **own)], hours=96)
        )
        mb = created.data["media_buy_id"]
        whole_id, own_id = (p["package_id"] for p in created.data["packages"])
        await approve_and_push_creatives_directly(sim.settings, mb)
        await sim.advance(18)
        before = await _rows(c, mb)
        await sim.advance(18)  # 36 h in: 12 h into the package's own day
        after = await _rows(c, mb)
    assert before[own_id]["impressions"] == 0  # nothing before its own start
    assert before[whole_id]["impressions"] > 0
    assert after[own_id]["spend"] > 0
    # half of its one-day flight gone: about half its budget, on pace
    assert 0.3 * 960 < after[own_id]["spend"] < 0.7 * 960, after[own_id]
    assert 0.7 < after[own_id]["pacing_index"] < 1.3, after[own_id]


async def _rows(c: Any, mb: str) -> dict[str, dict[str, Any]]:
    report = await call(c, "get_media_buy_delivery", {"media_buy_ids": [mb]})
    assert not report.is_error, report.data
    [delivery] = report.data["media_buy_deliveries"]
    return {p["package_id"]: p for p in delivery["by_package"]}
