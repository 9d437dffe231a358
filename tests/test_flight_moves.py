"""update_media_buy start_time: a buy that has not started can be moved — every line at
the ad server with it, guaranteed inventory re-checked in the new window and given back
in the old one; a running buy's start cannot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests import host_reads
from tests.media_helpers import non_guaranteed
from tests.support import DEMO_TOKEN, LiveServer, assert_valid, call, mcp_client


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_buy_that_has_not_started_moves_with_its_lines(live: LiveServer) -> None:
    args = non_guaranteed(budget=2000)
    start, end = _at(args["start_time"]), _at(args["end_time"])
    later, much_later = start + timedelta(days=2), end + timedelta(days=30)
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        created = await call(c, "create_media_buy", args)
        mb = created.data["media_buy_id"]
        moved = await call(
            c, "update_media_buy", {"media_buy_id": mb, "start_time": later.isoformat()}
        )
        # Both edges past the old end at once: the start is checked against the new end.
        both = await call(
            c,
            "update_media_buy",
            {
                "media_buy_id": mb,
                "start_time": (end + timedelta(days=1)).isoformat(),
                "end_time": much_later.isoformat(),
            },
        )
        listed = await call(c, "get_media_buys", {"media_buy_ids": [mb], "include_history": 5})
    assert not moved.is_error, moved.data
    assert_valid("update_media_buy", moved.data)
    assert "update_flight_dates" in moved.data["valid_actions"]
    assert not both.is_error, both.data
    [buy] = listed.data["media_buys"]
    assert _at(buy["start_time"]) == end + timedelta(days=1)
    assert _at(buy["end_time"]) == much_later
    assert _at(buy["packages"][0]["start_time"]) == end + timedelta(days=1)
    assert buy["revision"] == 3
    actions = [(h["revision"], h["action"]) for h in buy["history"]]
    assert actions[:2] == [(3, "updated_dates"), (2, "updated_dates")]
    assert "Start time from" in buy["history"][1]["summary"]
    [(_, order)] = host_reads.mock_orders(live, mb)
    [line] = order.lines.values()
    assert (line.spec.start, line.spec.end) == (end + timedelta(days=1), much_later)


async def test_bad_starts_are_refused_and_a_running_buy_keeps_its_own(live: LiveServer) -> None:
    args = non_guaranteed(budget=2000)
    end = _at(args["end_time"])
    running_args = {**non_guaranteed(budget=2000), "start_time": "asap"}
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        mb = (await call(c, "create_media_buy", args)).data["media_buy_id"]
        running = (await call(c, "create_media_buy", running_args)).data["media_buy_id"]

        async def move(media_buy_id: str, start: Any, **more: Any) -> Any:
            body = {"media_buy_id": media_buy_id, "start_time": start, **more}
            return await call(c, "update_media_buy", body)

        past = await move(mb, (datetime.now(UTC) - timedelta(days=1)).isoformat())
        after_end = await move(mb, (end + timedelta(hours=1)).isoformat())
        garbled = await move(mb, "next tuesday")
        started = await move(running, (end + timedelta(days=1)).isoformat())
        asap = await move(mb, "asap")
        listed = await call(c, "get_media_buys", {"media_buy_ids": [mb]})
    for refused in (past, after_end, garbled):
        assert refused.error_codes == ["VALIDATION_ERROR"], refused.data
        assert refused.error["field"] == "start_time"
    assert started.error_codes == ["ACTION_NOT_ALLOWED"], started.data
    details = started.error["details"]
    assert (details["attempted_action"], details["reason"]) == (
        "update_flight_dates",
        "wrong_status",
    )
    assert not asap.is_error, asap.data
    [buy] = listed.data["media_buys"]
    assert buy["status"] == "active"  # started at once
    assert _at(buy["start_time"]) <= datetime.now(UTC)
    assert buy["revision"] == 2  # only the asap move changed it


async def test_a_guaranteed_buy_moves_only_where_its_inventory_is(live: LiveServer) -> None:
    """Moved into a window another booking has mostly taken: PRODUCT_UNAVAILABLE and
    nothing moves. Moved into a free one: reserved there, and its old window is free."""
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        # Windows no other test books (tests/host_reads.py lists them).
        avail_a, flight_a = host_reads.flight(660)
        avail_b, flight_b = host_reads.flight(700)
        avail_c, flight_c = host_reads.flight(740)
        full_a = await host_reads.available(c, avail_a)
        full_b = await host_reads.available(c, avail_b)
        full_c = await host_reads.available(c, avail_c)
        a = await call(
            c,
            "create_media_buy",
            host_reads.request(host_reads.budget(full_a, 0.7), flight_a),
        )
        b = await call(
            c,
            "create_media_buy",
            host_reads.request(host_reads.budget(full_b, 0.5), flight_b),
        )
        assert not a.is_error and not b.is_error, (a.data, b.data)
        mb = b.data["message"].split()[2]
        crowded = await call(c, "update_media_buy", {"media_buy_id": mb, **flight_a})
        freed = await call(c, "update_media_buy", {"media_buy_id": mb, **flight_c})
        left_a = await host_reads.available(c, avail_a)
        left_b = await host_reads.available(c, avail_b)
        left_c = await host_reads.available(c, avail_c)
    assert crowded.error_codes == ["PRODUCT_UNAVAILABLE"], crowded.data
    assert crowded.error["field"] == "start_time"  # the flight moves as one
    assert not freed.is_error, freed.data
    assert abs(left_a - full_a * 0.3) < full_a * 0.01  # A's booking only
    assert abs(left_b - full_b) < full_b * 0.01  # B gave its old window back
    assert abs(left_c - full_c * 0.5) < full_c * 0.01  # and holds its new one
