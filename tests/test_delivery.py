"""Delivery over streamable HTTP on a simulated clock: hourly simulation, pacing and its
alerts, pause/approval/cap reactions, ad-server delivery, reports, isolation, restarts."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastmcp import Client

from adcp_agent.db.models_delivery import DeliveryHour, PacingAlert
from tests.delivery_support import (
    AD_OPS_TOKEN,
    REPORTING_TOKEN,
    SECOND_BUYER_TOKEN,
    SimServer,
    approve_and_push_creatives_directly,
    buy_args,
    init_admin_key,
    key,
    ros,
    sim,
    sim_postgres,
    sim_sqlite,
    start_sim_server,
)
from tests.support import DEMO_TOKEN, ToolCall, assert_valid, call, mcp_client, stored_rows
from tests.tenant_admin_support import admin_api

__all__ = ["sim", "sim_postgres", "sim_sqlite"]  # the module-scoped simulated-clock server fixture


async def _buy(client: Client, server: SimServer, packages: list[dict], **kw: Any) -> str:
    created = await call(client, "create_media_buy", buy_args((await server.now()), packages, **kw))
    assert not created.is_error, created.data
    return created.data["media_buy_id"]


async def _delivery(client: Client, **args: Any) -> ToolCall:
    result = await call(client, "get_media_buy_delivery", args)
    assert_valid("get_media_buy_delivery", result.data)
    return result


def _one(result: ToolCall) -> dict[str, Any]:
    [delivery] = result.data["media_buy_deliveries"]
    return delivery


async def test_simulated_delivery_is_hourly_paced_and_never_double_counted(
    sim: SimServer,
) -> None:
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        mb = await _buy(c, sim, [ros(budget=2000)])
        await approve_and_push_creatives_directly(sim.settings, mb)
        await sim.advance(24)
        args = {
            "media_buy_ids": [mb],
            "include_package_daily_breakdown": True,
            "time_granularity": "hourly",
            "include_window_breakdown": True,
        }
        first, again = await _delivery(c, **args), await _delivery(c, **args)
        status = await call(c, "check_media_buy_status", {"media_buy_id": mb})
        report = await call(c, "get_media_buy_report", {
            "media_buy_id": mb, "dimensions": ["date", "package"],
            "metrics": ["impressions", "spend", "ctr"]})  # fmt: skip
    d = _one(first)
    assert d["status"] == "active"
    totals, [pkg] = d["totals"], d["by_package"]
    # Even pacing: a quarter of the 96-hour flight → about a quarter of the budget.
    assert 400 < totals["spend"] <= 600 and totals["impressions"] > 100_000
    assert 0.8 <= pkg["pacing_index"] <= 1.2 and pkg["delivery_status"] == "delivering"
    assert 3.5 <= pkg["rate"] <= 4.0  # the clearing CPM sits between floor and bid
    assert pkg["viewability"]["viewable_rate"] == 0.64
    windows = d["windows"]
    assert len(windows) == 24
    assert sum(w["totals"]["impressions"] for w in windows) == totals["impressions"]
    assert len({w["totals"]["impressions"] for w in windows}) > 12  # day/night and noise
    assert sum(day["impressions"] for day in pkg["daily_breakdown"]) == pkg["impressions"]
    assert again.data["media_buy_deliveries"] == first.data["media_buy_deliveries"]
    rows = await stored_rows(sim.settings, DeliveryHour, DeliveryHour.media_buy_id == mb)
    assert len(rows) == 24 and {r.source for r in rows} == {"simulator"}
    assert d["ext"]["delivery_sources"] == ["simulator"]
    # The seed tools read the same figures.
    assert status.data["impressions_delivered"] == totals["impressions"]
    assert status.data["budget_spent"] == totals["spend"]
    assert status.data["flight_progress"] == 0.25
    assert_valid("get_media_buy_delivery", report.data)
    rows_out = report.data["report"]["rows"]
    assert {tuple(r) for r in rows_out} == {("date", "package", "impressions", "spend", "ctr")}
    assert sum(r["impressions"] for r in rows_out) == totals["impressions"]


async def test_without_a_creative_nothing_serves_and_a_pacing_alert_says_why(
    sim: SimServer,
) -> None:
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        mb = await _buy(c, sim, [ros(budget=1500)])
        await sim.advance(12)
        silent = _one(await _delivery(c, media_buy_ids=[mb]))
        await sim.advance(1)
        await _delivery(c, media_buy_ids=[mb])
    assert silent["totals"]["impressions"] == 0
    assert silent["by_package"][0]["pacing_index"] == 0.0
    [alert] = silent["ext"]["pacing"]["alerts"]
    assert (alert["type"], alert["severity"]) == ("underpacing", "critical")
    assert "creative" in alert["recommendation"]
    async with httpx.AsyncClient() as http:
        listed = await http.get(
            f"{sim.base_url}/api/v1/pacing/alerts",
            params={"media_buy_id": mb},
            headers={"x-adcp-auth": DEMO_TOKEN},
        )
        foreign = await http.get(
            f"{sim.base_url}/api/v1/pacing/alerts",
            params={"media_buy_id": mb},
            headers={"authorization": f"Bearer {SECOND_BUYER_TOKEN}"},
        )
    assert listed.status_code == 200
    alerts = listed.json()["alerts"]
    assert alerts and all(a["type"] == "underpacing" for a in alerts)
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "MEDIA_BUY_NOT_FOUND"
    # Idempotent per buy, day and kind however often pacing is evaluated.
    stored = await stored_rows(sim.settings, PacingAlert, PacingAlert.media_buy_id == mb)
    assert len({(a.day, a.kind) for a in stored}) == len(stored) == len(alerts)
    # The publisher sees the same alerts in the tenant-management API.
    admin = await sim.admin(
        "GET", "/pacing-alerts", params={"tenant_id": "demo", "severity": "critical"}
    )
    assert admin.status_code == 200
    assert mb in {a["media_buy_id"] for a in admin.json()["alerts"]}
    assert all(a["severity"] == "critical" for a in admin.json()["alerts"])
    bad = await sim.admin("GET", "/pacing-alerts", params={"severity": "mild"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "severity"


async def test_pause_stops_delivery_and_resume_restarts_it(sim: SimServer) -> None:
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        mb = await _buy(c, sim, [ros(budget=2000)])
        await approve_and_push_creatives_directly(sim.settings, mb)
        await sim.advance(6)
        paused = await call(
            c, "update_media_buy", {"media_buy_id": mb, "paused": True, "idempotency_key": key()}
        )
        assert not paused.is_error, paused.data
        await sim.advance(6)
        during = _one(await _delivery(c, media_buy_ids=[mb]))
        await call(
            c, "update_media_buy", {"media_buy_id": mb, "paused": False, "idempotency_key": key()}
        )
        await sim.advance(6)
        after = _one(await _delivery(c, media_buy_ids=[mb], time_granularity="hourly",
                                     include_window_breakdown=True))  # fmt: skip
    assert during["status"] == "paused" and during["by_package"][0]["paused"] is True
    hourly = [w["totals"]["impressions"] for w in after["windows"]]
    assert all(hourly[:6]) and not any(hourly[6:12]) and all(hourly[12:18])
    assert after["totals"]["impressions"] > during["totals"]["impressions"] > 0


async def test_budget_is_never_overspent_and_delivery_stops_at_flight_end(
    sim: SimServer,
) -> None:
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        mb = await _buy(c, sim, [ros(budget=500, bid=8.0, pacing="asap")], hours=48)
        await approve_and_push_creatives_directly(sim.settings, mb)
        await sim.advance(72)
        d = _one(await _delivery(c, media_buy_ids=[mb], time_granularity="daily",
                                 include_window_breakdown=True))  # fmt: skip
    assert d["status"] == "completed" and d["is_final"] is True
    assert 499 < d["totals"]["spend"] <= 500
    assert d["by_package"][0]["delivery_status"] == "budget_exhausted"
    last = max(
        r.hour
        for r in await stored_rows(sim.settings, DeliveryHour, DeliveryHour.media_buy_id == mb)
    )
    assert last < (await sim.now()) - timedelta(hours=24)  # nothing after the flight


async def test_daily_cap_limits_each_days_spend_and_the_alert_names_it(sim: SimServer) -> None:
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        mb = await _buy(c, sim, [ros(budget=3000, bid=8.0, pacing="asap")])
        capped = await call(c, "update_media_buy", {
            "media_buy_id": mb, "updates": {"set_daily_cap": {"amount": 200}},
            "idempotency_key": key()})  # fmt: skip
        assert not capped.is_error, capped.data
        await approve_and_push_creatives_directly(sim.settings, mb)
        await sim.advance(48)
        d = _one(await _delivery(c, media_buy_ids=[mb]))
    assert all(day["spend"] <= 200.01 for day in d["daily_breakdown"])
    assert d["totals"]["spend"] > 0
    alert = d["ext"]["pacing"]["alerts"][-1]
    assert alert["type"] == "underpacing" and "daily cap" in alert["recommendation"]


async def test_hours_before_approval_do_not_deliver(sim: SimServer) -> None:
    now = await sim.now()
    start = now + timedelta(hours=30)
    args = {
        "brand": {"domain": "acme.example"},
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(days=3)).isoformat(),
        "idempotency_key": key(),
        "packages": [{"product_id": "olv_news_preroll", "pricing_option_id": "olv_news_cpm",
                      "budget": 6000}],
    }  # fmt: skip
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as buyer:
        submitted = await call(buyer, "create_media_buy", args)
        assert submitted.data["status"] == "submitted", submitted.data
        mb = submitted.data["message"].split()[2]
        await approve_and_push_creatives_directly(sim.settings, mb)
        await sim.advance(36)  # six hours of the flight pass while it awaits approval
        async with mcp_client(sim.mcp_url, AD_OPS_TOKEN) as ops:
            approved = await call(
                ops, "update_media_buy", {"media_buy_id": mb, "action": "approve_order"}
            )
        assert not approved.is_error, approved.data
        await sim.advance(6)
        d = _one(await _delivery(buyer, media_buy_ids=[mb], time_granularity="hourly",
                                 include_window_breakdown=True))  # fmt: skip
    in_flight = [w for w in d["windows"] if datetime.fromisoformat(w["window_start"]) >= start]
    hourly = [w["totals"]["impressions"] for w in in_flight]
    assert len(hourly) == 12 and not any(hourly[:6]) and all(hourly[6:])
    assert d["by_package"][0]["completion_rate"] > 0.7  # video: completions reported


async def test_ad_server_tenants_report_the_adapters_delivery(sim: SimServer) -> None:
    async with mcp_client(sim.mcp_url, REPORTING_TOKEN) as c:
        start = await sim.now()
        mb = await _buy(c, sim, [{"product_id": "rp_display", "pricing_option_id": "rp_cpm",
                                  "bid_price": 3.0, "budget": 1000}])  # fmt: skip
        await sim.advance(30)
        d = _one(await _delivery(c, media_buy_ids=[mb], include_package_daily_breakdown=True))
    days = ((await sim.now()).date() - start.date()).days + 1
    [pkg] = d["by_package"]
    assert pkg["impressions"] == 10_000 * days and pkg["spend"] == 40.0 * days
    assert len(pkg["daily_breakdown"]) == days
    assert d["ext"]["delivery_sources"] == ["adapter"]


async def test_unknown_and_foreign_buys_are_not_found(sim: SimServer) -> None:
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as owner:
        mb = await _buy(owner, sim, [ros()])
        partial = await _delivery(owner, media_buy_ids=[mb, "mb_nope"])
        bad_dates = await _delivery(
            owner, media_buy_ids=[mb], start_date="2031-03-09", end_date="2031-03-01"
        )
        bad_granularity = await _delivery(owner, media_buy_ids=[mb], time_granularity="weekly")
    async with mcp_client(sim.mcp_url, SECOND_BUYER_TOKEN) as other:
        foreign = await _delivery(other, media_buy_ids=[mb])
        mine = await _delivery(other)
        report = await call(other, "get_media_buy_report", {"media_buy_id": mb})
        status = await call(other, "check_media_buy_status", {"media_buy_id": mb})
    assert not partial.is_error and partial.error_codes == ["MEDIA_BUY_NOT_FOUND"]
    assert partial.error["field"] == "media_buy_ids[1]"
    assert bad_dates.error_codes == ["VALIDATION_ERROR"] and bad_dates.is_error
    assert bad_granularity.error_codes == ["UNSUPPORTED_GRANULARITY"]
    assert foreign.is_error and foreign.error_codes == ["MEDIA_BUY_NOT_FOUND"]
    assert mine.data["media_buy_deliveries"] == []
    assert report.error_codes == ["MEDIA_BUY_NOT_FOUND"]
    assert_valid("get_media_buy_delivery", report.data)
    assert status.error_codes == ["MEDIA_BUY_NOT_FOUND"]


async def test_clock_is_admin_only_and_refused_on_the_real_clock(
    sim: SimServer, tmp_path: Path
) -> None:
    async with httpx.AsyncClient() as http:
        anonymous = await http.post(
            f"{sim.base_url}/api/v1/tenant-management/clock/advance", json={"hours": 1}
        )
    backwards = await sim.admin("POST", "/clock/advance", json={"hours": -1})
    assert anonymous.status_code == 401
    assert backwards.status_code == 422
    assert backwards.json()["error"]["details"]["field"] == "hours"
    async with admin_api(tmp_path) as api:
        await api.init_key()
        refused = await api.request("POST", "/clock/advance", json={"hours": 24})
        shown = await api.request("GET", "/clock")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "INVALID_STATE"
    assert "--sim-clock" in refused.json()["error"]["details"]["suggestion"]
    assert shown.json()["simulated"] is False


async def test_delivery_and_the_clock_survive_a_restart(tmp_path: Path) -> None:
    thread, server = start_sim_server(tmp_path)
    try:
        init_admin_key(server)
        async with mcp_client(server.mcp_url, DEMO_TOKEN) as c:
            mb = await _buy(c, server, [ros()])
            await approve_and_push_creatives_directly(server.settings, mb)
            await server.advance(10)
            before = _one(await _delivery(c, media_buy_ids=[mb]))
        now = await server.now()
    finally:
        thread.stop()
    thread, again = start_sim_server(tmp_path, restart_of=server.settings)
    try:
        again.admin_key = server.admin_key
        assert (await again.now()) == now
        async with mcp_client(again.mcp_url, DEMO_TOKEN) as c:
            after = _one(await _delivery(c, media_buy_ids=[mb]))
    finally:
        thread.stop()
    assert after == before
