"""Conversion tracking: a buyer's event sources (sync_event_sources) and the conversions
it logs to them (log_event) — validated one by one, deduplicated, attributed last-click
to the package whose tracked click they name, and reported in get_media_buy_delivery."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import httpx

from adcp_agent.db.models_delivery import ConversionEvent
from tests.media_helpers import key, own_tenant
from tests.support import LiveServer, assert_valid, call, mcp_client, stored_rows

_n = count(1)


async def _buyer(live: LiveServer) -> str:
    n = next(_n)
    token = f"adcp_test_conversions_token_{n:010d}"
    await own_tenant(live.settings, f"conv-pub-{n}", token, [])
    return token


def _sources(*entries: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"idempotency_key": key("es"), "event_sources": list(entries), **more}


async def test_event_sources_are_upserted_listed_and_removed(live: LiveServer) -> None:
    token = await _buyer(live)
    shop = {"event_source_id": "shop", "name": "Web shop", "event_types": ["purchase"],
            "action_source": "website", "allowed_domains": ["shop.acme.example"]}  # fmt: skip
    crm = {"event_source_id": "crm", "action_source": "offline"}
    async with mcp_client(live.mcp_url, token) as c:
        first = await call(c, "sync_event_sources", _sources(shop, crm))
        again = await call(c, "sync_event_sources", _sources(shop, crm))
        renamed = await call(c, "sync_event_sources", _sources({**shop, "name": "Shop"}, crm))
        listed = await call(c, "sync_event_sources", {"idempotency_key": key("es")})
        shop["name"] = "Shop"
        pruned = await call(c, "sync_event_sources", _sources(shop, delete_missing=True))
        bad = await call(
            c,
            "sync_event_sources",
            _sources(
                {"event_source_id": "x", "event_types": ["purchases"]},
                {"event_source_id": "y", "action_source": "billboard"},
                {"event_source_id": "z", "allowed_domains": ["not a domain"]},
            ),
        )
        after = await call(c, "sync_event_sources", {"idempotency_key": key("es")})
    for answer in (first, again, renamed, listed, pruned, bad):
        assert not answer.is_error, answer.data
        assert_valid("sync_event_sources", answer.data)
    actions = lambda a: {s["event_source_id"]: s["action"] for s in a.data["event_sources"]}  # noqa: E731
    assert actions(first) == {"shop": "created", "crm": "created"}
    assert actions(again) == {"shop": "unchanged", "crm": "unchanged"}
    assert actions(renamed) == {"shop": "updated", "crm": "unchanged"}
    assert actions(listed) == {"crm": "unchanged", "shop": "unchanged"}
    assert actions(pruned) == {"shop": "unchanged", "crm": "deleted"}
    assert actions(bad) == {"x": "failed", "y": "failed", "z": "failed"}
    assert [s["errors"][0]["field"] for s in bad.data["event_sources"]] == [
        "event_sources[0].event_types[0]",
        "event_sources[1].action_source",
        "event_sources[2].allowed_domains[0]",
    ]
    [shop_now] = after.data["event_sources"]
    assert shop_now["name"] == "Shop" and shop_now["managed_by"] == "buyer"


async def _running_buy(c: Any) -> dict[str, Any]:
    end = (datetime.now(UTC) + timedelta(days=14)).replace(microsecond=0).isoformat()
    package = {"product_id": "display_run_of_site", "pricing_option_id": "ros_auction",
               "bid_price": 4.0, "budget": 1000}  # fmt: skip
    booked = await call(
        c,
        "create_media_buy",
        {"brand": {"domain": "acme.example"}, "start_time": "asap", "end_time": end,
         "idempotency_key": key("cv"), "packages": [package, {**package, "budget": 2000}]},
    )  # fmt: skip
    assert not booked.is_error, booked.data
    return booked.data


async def _click(live: LiveServer, token: str, buy: dict[str, Any], i: int, click: str) -> datetime:
    when = datetime.now(UTC)
    async with httpx.AsyncClient() as http:
        tracked = await http.post(
            f"{live.base_url}/api/v1/tracking/click",
            headers={"authorization": f"Bearer {token}"},
            json={
                "event_id": click,
                "media_buy_id": buy["media_buy_id"],
                "package_id": buy["packages"][i]["package_id"],
                "timestamp": when.isoformat(),
            },
        )
    assert tracked.status_code == 201, tracked.text
    return when


def _event(event_id: str, event_type: str, when: datetime, **more: Any) -> dict[str, Any]:
    return {"event_id": event_id, "event_type": event_type,
            "event_time": (when + timedelta(seconds=30)).isoformat(), **more}  # fmt: skip


async def test_conversions_are_attributed_to_the_clicked_package_and_reported(
    live: LiveServer,
) -> None:
    token = await _buyer(live)
    async with mcp_client(live.mcp_url, token) as c:
        await call(c, "sync_event_sources", _sources({"event_source_id": "site"}))
        buy = await _running_buy(c)
        first, second = (p["package_id"] for p in buy["packages"])
        when = await _click(live, token, buy, 0, "clk-a")
        await _click(live, token, buy, 1, "clk-b")
        batch = [
            _event("o-1", "purchase", when, user_match={"click_id": "clk-a"},
                   custom_data={"value": 120.0, "currency": "USD"}),
            _event("o-2", "purchase", when, user_match={"click_id": "clk-a"},
                   custom_data={"value": 30.0}),
            _event("o-2r", "refund", when, user_match={"click_id": "clk-a"},
                   custom_data={"value": 30.0}),
            _event("l-1", "lead", when, user_match={"click_id": "clk-b"}),
            _event("o-3", "purchase", when),  # no click: kept, not attributed
            _event("o-4", "purchase", when, user_match={"click_id": "clk-unknown"}),
            _event("o-5", "purchases", when),  # not an AdCP event type
            _event("o-6", "purchase", when + timedelta(days=1)),  # in the future
        ]  # fmt: skip
        logged = await call(
            c,
            "log_event",
            {"idempotency_key": key("ev"), "event_source_id": "site", "events": batch},
        )
        replay = await call(
            c,
            "log_event",
            {"idempotency_key": key("ev"), "event_source_id": "site", "events": batch},
        )
        test = await call(
            c,
            "log_event",
            {"idempotency_key": key("ev"), "event_source_id": "site", "test_event_code": "T1",
             "events": [_event("t-1", "purchase", when, user_match={"click_id": "clk-a"})]},
        )  # fmt: skip
        today = datetime.now(UTC).date().isoformat()
        report = await call(
            c,
            "get_media_buy_delivery",
            {"media_buy_ids": [buy["media_buy_id"]], "end_date": today},
        )
    assert_valid("log_event", logged.data)
    assert logged.data["events_received"] == 8 and logged.data["events_processed"] == 6
    assert [f["event_id"] for f in logged.data["partial_failures"]] == ["o-5", "o-6"]
    assert logged.data["match_quality"] == round(4 / 6, 4)
    assert replay.data["events_processed"] == 6
    assert any("logged before" in w for w in replay.data["warnings"])
    assert test.data["events_processed"] == 1
    assert_valid("get_media_buy_delivery", report.data)
    [delivery] = report.data["media_buy_deliveries"]
    rows = {p["package_id"]: p for p in delivery["by_package"]}
    assert rows[first]["conversions"] == 3  # two purchases and a refund
    assert rows[first]["conversion_value"] == 120.0  # 150 bought, 30 refunded
    assert {t["event_type"]: t["count"] for t in rows[first]["by_event_type"]} == {
        "purchase": 2,
        "refund": 1,
    }
    assert rows[second]["conversions"] == 1 and rows[second]["leads"] == 1
    assert delivery["totals"]["conversions"] == 4
    assert report.data["aggregated_totals"]["conversions"] == 4
    stored = await stored_rows(live.settings, ConversionEvent, ConversionEvent.event_id == "t-1")
    assert stored == []  # a test event is not recorded


async def test_sources_and_clicks_are_the_buyers_own(live: LiveServer) -> None:
    mine, theirs = await _buyer(live), await _buyer(live)
    async with mcp_client(live.mcp_url, mine) as c:
        await call(c, "sync_event_sources", _sources({"event_source_id": "site"}))
        buy = await _running_buy(c)
        when = await _click(live, mine, buy, 0, "clk-mine")
    async with mcp_client(live.mcp_url, theirs) as c:
        foreign = await call(
            c,
            "log_event",
            {"idempotency_key": key("ev"), "event_source_id": "site",
             "events": [_event("x-1", "purchase", when)]},
        )  # fmt: skip
        await call(c, "sync_event_sources", _sources({"event_source_id": "site"}))
        stolen = await call(
            c,
            "log_event",
            {"idempotency_key": key("ev"), "event_source_id": "site",
             "events": [_event("x-2", "purchase", when, user_match={"click_id": "clk-mine"})]},
        )  # fmt: skip
    assert foreign.error_codes == ["REFERENCE_NOT_FOUND"]
    assert foreign.error["field"] == "event_source_id"
    assert stolen.data["events_processed"] == 1 and stolen.data["match_quality"] == 0.0
    [row] = await stored_rows(live.settings, ConversionEvent, ConversionEvent.event_id == "x-2")
    assert row.media_buy_id is None  # another buyer's click credits nothing


async def test_capabilities_declare_conversion_tracking(live: LiveServer) -> None:
    token = await _buyer(live)
    async with mcp_client(live.mcp_url, token) as c:
        caps = await call(c, "get_adcp_capabilities", {})
    assert_valid("get_adcp_capabilities", caps.data)
    tracking = caps.data["media_buy"]["conversion_tracking"]
    assert tracking["attribution_windows"] == [{"post_click": [{"interval": 28, "unit": "days"}]}]


async def test_the_same_batch_sent_twice_at_once_is_stored_once(live: LiveServer) -> None:
    token = await _buyer(live)
    when = datetime.now(UTC) - timedelta(minutes=5)
    batch = [_event(f"race-{i}", "lead", when) for i in range(200)]
    async with mcp_client(live.mcp_url, token) as a, mcp_client(live.mcp_url, token) as b:
        await call(a, "sync_event_sources", _sources({"event_source_id": "crm"}))
        answers = await asyncio.gather(
            *(
                call(client, "log_event",
                     {"idempotency_key": key("ev"), "event_source_id": "crm", "events": batch})
                for client in (a, b)
            )
        )  # fmt: skip
    assert all(not answer.is_error for answer in answers), [x.data for x in answers]
    rows = await stored_rows(
        live.settings,
        ConversionEvent,
        ConversionEvent.event_id.startswith("race-"),  # type: ignore[attr-defined]
    )
    assert len(rows) == 200  # each once, whichever call stored it


async def test_the_same_source_synced_twice_at_once_is_one_source(live: LiveServer) -> None:
    token = await _buyer(live)
    async with mcp_client(live.mcp_url, token) as a, mcp_client(live.mcp_url, token) as b:
        answers = await asyncio.gather(
            *(call(c, "sync_event_sources", _sources({"event_source_id": "app"})) for c in (a, b))
        )
        listed = await call(a, "sync_event_sources", {"idempotency_key": key("es")})
    assert all(not x.is_error for x in answers), [x.data for x in answers]
    actions = sorted(x.data["event_sources"][0]["action"] for x in answers)
    assert actions == ["created", "unchanged"]
    assert [s["event_source_id"] for s in listed.data["event_sources"]] == ["app"]
