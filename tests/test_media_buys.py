"""Creating media buys over streamable HTTP: both request forms, validation, avails,
approvals, idempotency under concurrency, isolation."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from adcp_agent_adapters.mock import MockAdapter

from adcp_agent.db.engine import Database
from adcp_agent.db.models import AuditLog
from adcp_agent.db.models_media import MediaBuy
from tests.conftest import ADMIN_TOKEN, SECOND_TOKEN
from tests.media_helpers import flight, guaranteed, key, non_guaranteed, own_tenant, whole_days
from tests.support import DEMO_TOKEN, LiveServer, assert_valid, call, mcp_client, stored_rows


async def test_non_guaranteed_buy_is_booked_at_once(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        created = await call(
            client,
            "create_media_buy",
            non_guaranteed(
                targeting_overlay={"geo_countries": ["US"], "signals": ["auto_intenders"]}
            ),
        )
        listed = await call(client, "get_media_buys", {})
    assert not created.is_error, created.data
    assert_valid("create_media_buy", created.data)
    assert created.data["status"] == "completed"
    assert created.data["media_buy_status"] == "pending_start"
    assert created.data["confirmed_at"]
    package = created.data["packages"][0]
    assert package["budget"] == 5000 and package["bid_price"] == 4.0
    assert package["impressions"] == 1_250_000  # 5000 / 4.00 CPM
    assert_valid("get_media_buys", listed.data)
    assert created.data["media_buy_id"] in {b["media_buy_id"] for b in listed.data["media_buys"]}
    [row] = await stored_rows(
        live.settings, MediaBuy, MediaBuy.media_buy_id == created.data["media_buy_id"]
    )
    assert row.state == "live" and row.external_order_id.startswith("mock_order_")
    [audit] = await stored_rows(
        live.settings,
        AuditLog,
        AuditLog.target_id == row.media_buy_id,
        AuditLog.action == "media_buy.create",
    )
    assert audit.actor == "principal:demo_buyer"
    assert audit.after["total_budget"] == 5000


async def test_seed_flat_form_books_through_the_same_service(live: LiveServer) -> None:
    start, end = flight(days_ahead=3)
    async with mcp_client(live.mcp_url, DEMO_TOKEN, header="x-adcp-auth") as client:
        created = await call(
            client,
            "create_media_buy",
            {
                "product_ids": ["display_run_of_site", "display_sports_section"],
                "total_budget": 8000,
                "flight_start_date": start[:10],
                "flight_end_date": end[:10],
                "targeting_overlay": {"geo_country_any_of": ["US"]},
            },
        )
    assert not created.is_error, created.data
    assert_valid("create_media_buy", created.data)
    budgets = sorted(p["budget"] for p in created.data["packages"])
    assert budgets == [4000, 4000]
    assert "floor price" in created.data["message"]  # no bid in the seed form: said, not silent
    overlay = created.data["packages"][0]["targeting_overlay"]
    assert overlay == {"geo_countries": ["US"]}


async def test_guaranteed_buy_waits_for_admin_approval(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as buyer:
        submitted = await call(buyer, "create_media_buy", guaranteed())
        task_id = submitted.data["task_id"]
        pending = await call(buyer, "get_task_status", {"task_id": task_id})
        not_listed = await call(buyer, "get_media_buys", {})
        media_buy_id = submitted.data["message"].split()[2]
        self_approve = await call(
            buyer, "update_media_buy", {"media_buy_id": media_buy_id, "action": "approve_order"}
        )
    assert submitted.data["status"] == "submitted"
    assert_valid("create_media_buy", submitted.data)
    assert "media_buy_id" not in submitted.data
    assert pending.data["status"] == "submitted"
    assert_valid("get_task_status", pending.data)
    assert media_buy_id not in {b["media_buy_id"] for b in not_listed.data["media_buys"]}
    # A buyer can never approve its own order.
    assert self_approve.error_codes == ["PERMISSION_DENIED"]

    async with mcp_client(live.mcp_url, ADMIN_TOKEN) as admin:
        approved = await call(
            admin, "update_media_buy", {"media_buy_id": media_buy_id, "action": "approve_order"}
        )
        again = await call(
            admin, "update_media_buy", {"media_buy_id": media_buy_id, "action": "approve_order"}
        )
    assert not approved.is_error, approved.data
    assert again.error_codes == ["INVALID_STATE"]
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as buyer:
        done = await call(buyer, "get_task_status", {"task_id": task_id})
        listed = await call(buyer, "get_media_buys", {"media_buy_ids": [media_buy_id]})
    assert done.data["status"] == "completed"
    assert done.data["result"]["media_buy_id"] == media_buy_id
    assert_valid("get_task_status", done.data)
    assert_valid("create_media_buy", done.data["result"])
    assert listed.data["media_buys"][0]["status"] == "pending_start"
    assert listed.data["media_buys"][0]["confirmed_at"]


async def test_validation_errors_name_the_field(live: LiveServer) -> None:
    start, end = flight()
    base = non_guaranteed()
    cases = {
        "BUDGET_TOO_LOW": ({**guaranteed(budget=500)}, "packages[0].budget"),
        "PRODUCT_NOT_FOUND": (
            {**base, "packages": [{**base["packages"][0], "product_id": "nope"}]},
            "packages[0].product_id",
        ),
        "INVALID_REQUEST": (
            {**base, "packages": [{**base["packages"][0], "bid_price": None}]},
            "packages[0].bid_price",
        ),
        "VALIDATION_ERROR": ({**base, "end_time": start}, "end_time"),
        "BRAND_REQUIRED": ({k: v for k, v in base.items() if k != "brand"}, "brand"),
        "SIGNAL_NOT_FOUND": (
            {
                **base,
                "packages": [{**base["packages"][0], "targeting_overlay": {"signals": ["ghost"]}}],
            },
            "packages[0].targeting_overlay.signals",
        ),
    }
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        for code, (args, field) in cases.items():
            result = await call(client, "create_media_buy", {**args, "idempotency_key": key()})
            assert result.error_codes == [code], (code, result.data)
            assert result.error["field"] == field
            assert_valid("create_media_buy", result.data)
        past = await call(
            client,
            "create_media_buy",
            {**base, "idempotency_key": key(), "start_time": "2020-01-01T00:00:00Z"},
        )
        naive = await call(
            client, "create_media_buy", {**base, "idempotency_key": key(), "start_time": start[:19]}
        )
        bad_targeting = await call(
            client,
            "create_media_buy",
            {
                **base,
                "idempotency_key": key(),
                "packages": [
                    {**base["packages"][0], "targeting_overlay": {"geo_countries": ["FR"]}}
                ],
            },
        )
        lead_time = await call(
            client,
            "create_media_buy",
            {
                **guaranteed(product="podcast_host_read", option="host_read_cpm", budget=6000),
                "start_time": flight(days_ahead=2)[0],
                "end_time": end,
            },
        )
    assert past.error["field"] == "start_time"
    assert "time zone" in naive.error["message"]
    assert bad_targeting.error["field"] == "packages[0].targeting_overlay.geo_countries"
    assert "lead time" in lead_time.error["message"]


async def test_booking_reduces_later_avails_and_guaranteed_cannot_overbook(
    live: LiveServer,
) -> None:
    avail_args, window = whole_days("podcast_host_read", days_ahead=20, days=9)
    start, end = window["start_time"], window["end_time"]
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        before = await call(client, "get_avails", avail_args)
        available = before.data["packages"][0]["available_impressions"]
        assert "exceeds capacity" in before.data["packages"][0]["warning"]
        budget = round(available * 0.6 * 25 / 1000, 2)
        first = await call(
            client,
            "create_media_buy",
            {
                **guaranteed(product="podcast_host_read", option="host_read_cpm", budget=budget),
                "start_time": start,
                "end_time": end,
            },
        )
        after = await call(client, "get_avails", avail_args)
        second = await call(
            client,
            "create_media_buy",
            {
                **guaranteed(product="podcast_host_read", option="host_read_cpm", budget=budget),
                "start_time": start,
                "end_time": end,
            },
        )
    assert first.data["status"] == "submitted", first.data
    left = after.data["packages"][0]["available_impressions"]
    assert left < available * 0.45
    assert after.data["packages"][0]["reserved_impressions"] > 0
    assert second.error_codes == ["PRODUCT_UNAVAILABLE"]
    assert second.error["details"]["available_impressions"] == left


async def test_auction_buys_take_no_inventory_from_the_next_buyer(live: LiveServer) -> None:
    """An auction package bids for impressions it is not promised: however much of the
    forecast it could buy, the next buyer's avails stay as they were (a guaranteed
    booking's do shrink: the test above)."""
    avail_args, window = whole_days("display_run_of_site", days_ahead=3, days=9)
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        before = await call(client, "get_avails", avail_args)
        available = before.data["packages"][0]["available_impressions"]
        budget = round(available * 0.9 * 4.0 / 1000, 2)  # 90% of the forecast at a 4.00 bid
        bought = await call(client, "create_media_buy", {**non_guaranteed(budget=budget), **window})
        after = await call(client, "get_avails", avail_args)
    assert bought.data["status"] == "completed", bought.data
    assert after.data["packages"][0]["available_impressions"] == available
    assert after.data["packages"][0]["reserved_impressions"] == 0


async def test_idempotency_same_key_replays_and_different_body_conflicts(
    live: LiveServer,
) -> None:
    args = non_guaranteed(budget=1500)
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        results = await asyncio.gather(*(call(client, "create_media_buy", args) for _ in range(5)))
        conflict = await call(client, "create_media_buy", {**args, "po_number": "PO-2"})
    ids = {r.data.get("media_buy_id") for r in results}
    assert len(ids) == 1 and None not in ids, [r.data for r in results]
    assert sum(1 for r in results if r.data.get("replayed")) == 4
    rows = await stored_rows(live.settings, MediaBuy, MediaBuy.media_buy_id.in_(ids))  # type: ignore[attr-defined]
    assert len(rows) == 1
    assert conflict.error_codes == ["IDEMPOTENCY_CONFLICT"]
    assert_valid("create_media_buy", conflict.data)


async def test_other_principals_cannot_see_or_touch_a_buy(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as owner:
        created = await call(owner, "create_media_buy", non_guaranteed(budget=1000))
    media_buy_id = created.data["media_buy_id"]
    async with mcp_client(live.mcp_url, SECOND_TOKEN) as other:
        read = await call(other, "get_media_buys", {"media_buy_ids": [media_buy_id]})
        status = await call(other, "check_media_buy_status", {"media_buy_id": media_buy_id})
        update = await call(
            other, "update_media_buy", {"media_buy_id": media_buy_id, "paused": True}
        )
        pause = await call(other, "pause_media_buy", {"media_buy_id": media_buy_id})
    assert read.data["media_buys"] == []
    assert read.data["errors"][0]["code"] == "MEDIA_BUY_NOT_FOUND"
    assert_valid("get_media_buys", read.data)
    assert status.error_codes == ["MEDIA_BUY_NOT_FOUND"]
    assert update.error_codes == ["MEDIA_BUY_NOT_FOUND"]
    assert pause.error_codes == ["MEDIA_BUY_NOT_FOUND"]
    assert_valid("update_media_buy", update.data)


async def test_adapter_failure_leaves_nothing_claimed(live: LiveServer) -> None:
    """A tenant whose ad server refuses orders: the buyer gets a transient error, no buy
    exists, and an audit row records the failure."""
    token = "adcp_test_own_tenant_token_000000000"
    await own_tenant(live.settings, "flaky", token, ["create_order"], "flaky_buyer")
    args = non_guaranteed(budget=1000)
    async with mcp_client(live.mcp_url, token) as client:
        failed = await call(client, "create_media_buy", args)
        retry = await call(client, "create_media_buy", args)
        listed = await call(client, "get_media_buys", {})
    assert failed.error_codes == ["SERVICE_UNAVAILABLE"]
    assert failed.error["recovery"] == "transient"
    assert retry.error_codes == ["SERVICE_UNAVAILABLE"]  # the key was released, not stuck
    assert listed.data["media_buys"] == []
    assert await stored_rows(live.settings, MediaBuy, MediaBuy.tenant_id == "flaky") == []
    audits = await stored_rows(
        live.settings,
        AuditLog,
        AuditLog.tenant_id == "flaky",
        AuditLog.action == "media_buy.create_failed",
    )
    assert len(audits) == 2 and not audits[0].success


async def test_asap_start_is_active_immediately(live: LiveServer) -> None:
    args = non_guaranteed(budget=1000)
    args["start_time"] = "asap"
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        created = await call(client, "create_media_buy", args)
        listed = await call(client, "get_media_buys", {"status_filter": "active"})
    assert created.data["media_buy_status"] == "active"
    assert_valid("create_media_buy", created.data)
    assert created.data["media_buy_id"] in {b["media_buy_id"] for b in listed.data["media_buys"]}


async def test_provisional_rows_reach_the_disk_as_surely_as_the_ad_servers_orders(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote ad server is called between two commits: the claim and provisional rows
    first — fsynced for an ad server whose orders survive a power failure, not for one
    whose orders do not — and the booking, always fsynced. The mock ad server's orders
    are local: its bookings are one transaction, fsynced."""
    seen: list[bool] = []
    write = Database.write
    bookings = ("book_in_one_transaction", "book_around_the_call", "_book")

    def spying(self: Database, *, durable: bool = True) -> Any:
        if sys._getframe(1).f_code.co_name in bookings:  # services.booking's writes
            seen.append(durable)
        return write(self, durable=durable)

    monkeypatch.setattr(Database, "write", spying)
    answers, transactions = [], []
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        for local, survives in [(True, False), (False, False), (False, True)]:
            monkeypatch.setattr(MockAdapter, "orders_are_local", local)
            monkeypatch.setattr(MockAdapter, "orders_survive_power_loss", survives)
            answers.append(await call(client, "create_media_buy", non_guaranteed(budget=1000)))
            transactions.append(seen[:])
            seen.clear()
    assert not any(a.is_error for a in answers), [a.data for a in answers]
    assert transactions == [[True], [False, True], [True, True]]


# (product, pricing option, CPM, targeting overlay, days ahead): a package of the whole
# product, and one that targets a third of it (mobile devices only).
_WHOLE = ("podcast_host_read", "host_read_cpm", 25.0, None, 40)
_THIRD = ("audio_streaming_radio", "radio_cpm", 14.0, {"device_type": ["mobile"]}, 200)


@pytest.mark.parametrize("booking", [_WHOLE, _THIRD], ids=["whole", "targeted"])
async def test_two_concurrent_bookings_never_both_take_the_last_inventory(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch, booking: tuple
) -> None:
    """Both requests are checked before either is booked (each alone would fit: 60% of
    what get_avails offers). For the whole product the booking that commits second
    finds the first's reservation and is refused. A third of the product (mobile
    only) after another 60% of that third is booked still has room, and a check made
    after the first booking would say so: both are booked."""
    from adcp_agent.services import media_buys

    product, option, cpm, overlay, days_ahead = booking
    avail_args, window = whole_days(product, days_ahead, days=9, overlay=overlay)
    prepare = media_buys.prepare
    arrived: list[asyncio.Event] = []

    async def both_checked_first(*args: Any, **kwargs: Any) -> Any:
        checked = await prepare(*args, **kwargs)
        if not arrived:
            arrived.append(asyncio.Event())
            await arrived[0].wait()  # until the other one is checked too
        else:
            arrived[0].set()
        return checked

    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        before = await call(client, "get_avails", avail_args)
        available = before.data["packages"][0]["available_impressions"]
        budget = round(available * 0.6 * cpm / 1000, 2)
        args = guaranteed(product=product, option=option, budget=budget)
        args.update(window)
        if overlay:
            args["packages"][0]["targeting_overlay"] = overlay
        monkeypatch.setattr(media_buys, "prepare", both_checked_first)
        results = await asyncio.gather(
            *(
                call(client, "create_media_buy", {**args, "idempotency_key": key("g")})
                for _ in range(2)
            )
        )
    assert len(arrived) == 1 and arrived[0].is_set()  # both were checked before booking
    statuses = sorted(r.error_codes[0] if r.error_codes else r.data["status"] for r in results)
    if overlay:
        assert statuses == ["submitted", "submitted"], [r.data for r in results]
        return
    assert statuses == ["PRODUCT_UNAVAILABLE", "submitted"], [r.data for r in results]
    [refused] = [r for r in results if r.error_codes]
    assert "another booking took" in refused.error["message"]
    assert refused.error["details"]["available_impressions"] < available * 0.45
