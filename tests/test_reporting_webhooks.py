"""AdCP reporting webhooks: scheduled delivery reports pushed to the buyer's server —
one per closed period (hourly or daily, on the business clock), numbered, each the
buy's get_media_buy_delivery report for exactly that period, the last one ``final``;
authenticated as the buyer asked and echoing its token."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from tests.delivery_support import (
    SimServer,
    approve_and_push_creatives_directly,
    buy_args,
    ros,
    sim,
    sim_postgres,
    sim_sqlite,
)
from tests.media_helpers import non_guaranteed
from tests.notifications_support import Receiver, eventually
from tests.support import DEMO_TOKEN, LiveServer, assert_valid, call, mcp_client

__all__ = ["sim", "sim_postgres", "sim_sqlite"]  # the module-scoped simulated-clock server fixture

BEARER = "r" * 40
TOKEN = "report-token-0123456789"


def _hook(receiver: Receiver, frequency: str = "hourly", **more: Any) -> dict[str, Any]:
    return {
        "url": receiver.url("/adcp/reports"),
        "reporting_frequency": frequency,
        "authentication": {"schemes": ["Bearer"], "credentials": BEARER},
        "token": TOKEN,
        **more,
    }


async def _allow_loopback(sim: SimServer) -> None:
    """The buyer's receiver listens on 127.0.0.1, which webhooks may not reach unless
    the publisher allows it."""
    allowed = {"features": {"allow_private_webhooks": ["127.0.0.1/32"]}}
    response = await sim.admin("PATCH", "/tenants/demo", json=allowed)
    assert response.status_code == 200, response.text


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _reports(receiver: Receiver) -> list[dict[str, Any]]:
    """The reports received, once each (a retried delivery carries the same event id,
    as AdCP receivers dedupe on), in sequence."""
    unique = {r.headers["x-adcp-event-id"]: json.loads(r.body) for r in receiver.requests}
    return sorted(unique.values(), key=lambda p: p["sequence_number"])


async def test_hourly_reports_arrive_numbered_and_equal_the_delivery(sim: SimServer) -> None:
    await _allow_loopback(sim)
    async with Receiver() as receiver, mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        args = buy_args(await sim.now(), [ros(600)], hours=5, reporting_webhook=_hook(receiver))
        created = await call(c, "create_media_buy", args)
        assert not created.is_error, created.data
        mb = created.data["media_buy_id"]
        await approve_and_push_creatives_directly(sim.settings, mb)
        await sim.advance(3)

        async def three() -> bool:
            return len(_reports(receiver)) >= 3

        await eventually(three, seconds=60)
        hourly = await call(
            c,
            "get_media_buy_delivery",
            {"media_buy_ids": [mb], "time_granularity": "hourly", "include_window_breakdown": True},
        )
        await sim.advance(4)  # past the flight's end

        async def final() -> bool:
            return any(p["notification_type"] == "final" for p in _reports(receiver))

        await eventually(final, seconds=60)

        async def all_before_final() -> bool:  # numbered with no gap (none lost)
            numbers = [p["sequence_number"] for p in _reports(receiver)]
            return numbers == list(range(1, len(numbers) + 1))

        await eventually(all_before_final, seconds=30)
    reports = _reports(receiver)
    assert [p["notification_type"] for p in reports] == ["scheduled"] * (len(reports) - 1) + [
        "final"
    ]
    for report, request in zip(
        reports, sorted(receiver.requests, key=lambda r: r.body), strict=False
    ):
        assert request.headers["authorization"] == f"Bearer {BEARER}"
        assert report["token"] == TOKEN
        assert_valid("get_media_buy_delivery", {k: v for k, v in report.items() if k != "token"})
    # Consecutive hours (AdCP periods end at their last second), each announcing the
    # next; the final one announces none.
    periods = [
        (_at(p["reporting_period"]["start"]), _at(p["reporting_period"]["end"])) for p in reports
    ]
    assert all(b - a == timedelta(seconds=3599) for a, b in periods)
    assert all(
        a[1] + timedelta(seconds=1) == b[0] for a, b in zip(periods, periods[1:], strict=False)
    )
    assert (
        all(p["next_expected_at"] for p in reports[:-1]) and "next_expected_at" not in reports[-1]
    )
    # Each report holds the hour's delivery as get_media_buy_delivery reports it.
    windows = {
        w["window_start"]: w["totals"]["impressions"]
        for w in hourly.data["media_buy_deliveries"][0]["windows"]
    }
    for report in reports[:3]:
        [delivery] = report["media_buy_deliveries"]
        assert delivery["media_buy_id"] == mb
        start = report["reporting_period"]["start"]
        assert delivery["totals"]["impressions"] == windows[start], (start, windows)
    assert sum(r["media_buy_deliveries"][0]["totals"]["impressions"] for r in reports) > 0


async def test_a_daily_webhook_set_by_an_update_reports_what_was_asked(sim: SimServer) -> None:
    await _allow_loopback(sim)
    async with Receiver() as receiver, mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        created = await call(c, "create_media_buy", buy_args(await sim.now(), [ros(900)], hours=72))
        mb = created.data["media_buy_id"]
        await approve_and_push_creatives_directly(sim.settings, mb)
        hook = _hook(receiver, "daily", requested_metrics=["impressions", "spend"])
        stale = await call(
            c, "update_media_buy", {"media_buy_id": mb, "revision": 7, "reporting_webhook": hook}
        )
        set_ = await call(c, "update_media_buy", {"media_buy_id": mb, "reporting_webhook": hook})
        await sim.advance(30)

        async def one() -> bool:
            return len(receiver.requests) >= 1

        await eventually(one, seconds=60)
        listed = await call(c, "get_media_buys", {"media_buy_ids": [mb]})
    assert stale.error_codes == ["CONFLICT"]
    assert not set_.is_error, set_.data
    assert set_.data["changes_applied"] == ["reporting webhook set"]
    assert listed.data["media_buys"][0]["revision"] == 1  # the buy itself is unchanged
    [report] = _reports(receiver)[:1]
    period = report["reporting_period"]
    assert period["start"].endswith("T00:00:00Z") and period["end"].endswith("T23:59:59Z")
    [delivery] = report["media_buy_deliveries"]
    assert delivery["totals"]["impressions"] > 0
    for row in (delivery["totals"], *delivery["by_package"]):
        assert "clicks" not in row and "ctr" not in row  # not asked for
        assert {"impressions", "spend"} <= set(row)


async def test_bad_reporting_webhooks_are_refused_before_anything_is_booked(
    live: LiveServer,
) -> None:
    good = {
        "url": "https://buyer.example/reports",
        "reporting_frequency": "hourly",
        "authentication": {"schemes": ["Bearer"], "credentials": BEARER},
    }
    cases = [
        ({**good, "reporting_frequency": "weekly"}, "VALIDATION_ERROR", "reporting_frequency"),
        ({**good, "requested_metrics": ["conversions"]}, "VALIDATION_ERROR", "requested_metrics"),
        ({**good, "url": "http://10.9.8.7/hook"}, "VALIDATION_ERROR", "url"),
    ]
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        before = await call(c, "get_media_buys", {})
        outcomes = [
            await call(c, "create_media_buy", {**non_guaranteed(), "reporting_webhook": hook})
            for hook, _, _ in cases
        ]
        no_auth = {k: v for k, v in good.items() if k != "authentication"}
        missing = await call(
            c, "create_media_buy", {**non_guaranteed(), "reporting_webhook": no_auth}
        )
        after = await call(c, "get_media_buys", {})
        booked = await call(c, "create_media_buy", {**non_guaranteed(), "reporting_webhook": good})
        mb = booked.data["media_buy_id"]
        monthly = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "reporting_webhook": {**good, "reporting_frequency": "monthly"}},
        )
        products = await call(c, "get_products", {"brief": "display"})
    for outcome, (_, code, field) in zip(outcomes, cases, strict=True):
        assert outcome.error_codes == [code], outcome.data
        assert outcome.error["field"] == f"reporting_webhook.{field}"
    assert missing.is_error and "authentication" in missing.error["field"]
    assert after.data["pagination"]["total_count"] == before.data["pagination"]["total_count"]
    assert not booked.is_error, booked.data
    assert not monthly.is_error, monthly.data
    capabilities = products.data["products"][0]["reporting_capabilities"]
    assert capabilities["supports_webhooks"] is True


def test_periods_start_where_the_buy_does() -> None:
    from datetime import UTC

    from adcp_agent.db.models_media import MediaBuy
    from adcp_agent.services.reporting_webhooks import first_period

    start = datetime(2031, 3, 4, 10, 30, tzinfo=UTC)
    buy = MediaBuy.model_construct(start_time=start)
    early, running = start - timedelta(days=2), start + timedelta(hours=5, minutes=10)
    assert first_period("hourly", buy, early) == start.replace(minute=0)
    assert first_period("daily", buy, early) == start.replace(hour=0, minute=0)
    assert first_period("hourly", buy, running) == datetime(2031, 3, 4, 15, tzinfo=UTC)


async def test_monthly_reports_cover_calendar_months(sim: SimServer) -> None:
    await _allow_loopback(sim)
    async with Receiver() as receiver, mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        now = await sim.now()
        hook = _hook(receiver, "monthly")
        args = buy_args(now, [ros(600)], hours=24 * 70, reporting_webhook=hook)
        created = await call(c, "create_media_buy", args)
        assert not created.is_error, created.data
        await approve_and_push_creatives_directly(sim.settings, created.data["media_buy_id"])
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = (month + timedelta(days=32)).replace(day=1)
        await sim.advance((following - now).total_seconds() / 3600 + 1)

        async def one() -> bool:
            return len(_reports(receiver)) >= 1

        await eventually(one, seconds=60)
    [report] = _reports(receiver)
    assert report["notification_type"] == "scheduled" and report["sequence_number"] == 1
    assert _at(report["reporting_period"]["start"]) == month
    assert _at(report["reporting_period"]["end"]) == following - timedelta(seconds=1)
    assert _at(report["next_expected_at"]) == (following + timedelta(days=32)).replace(day=1)
    assert report["media_buy_deliveries"][0]["totals"]["impressions"] > 0
    assert_valid("get_media_buy_delivery", {k: v for k, v in report.items() if k != "token"})
