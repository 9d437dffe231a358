"""A booking on an ad server whose orders are local (the mock) is one transaction: the
idempotency claim, the order, the buy and its packages and the answer commit together
or not at all (services.booking). What a buyer can tell: concurrent duplicates still
book once; a booking that fails after its order leaves nothing booked, the order
cancelled and the inventory free; a stopped one leaves no claim to wait out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import col

from adcp_agent.db.models_media import IdempotencyRecord, MediaBuy
from adcp_agent.services import booking, buy_events, idempotency
from tests import host_reads
from tests.media_helpers import key
from tests.support import DEMO_TOKEN, LiveServer, audit_row, call, mcp_client, stored_rows


async def test_concurrent_duplicates_book_once_with_one_order(live: LiveServer) -> None:
    avail_args, flight_args = host_reads.flight(days_ahead=470)
    same_key = key("local-dup")
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        available = await host_reads.available(client, avail_args)
        request = {
            **host_reads.request(host_reads.budget(available, 0.3), flight_args),
            "idempotency_key": same_key,
        }
        answers = await asyncio.gather(
            *(call(client, "create_media_buy", request) for _ in range(5))
        )
        left = await host_reads.available(client, avail_args)
    assert not any(a.is_error for a in answers), [a.data for a in answers]
    [mb] = {a.data["message"].split()[2] for a in answers}
    assert sum(1 for a in answers if a.data.get("replayed")) == 4
    assert [o.spec.media_buy_id for o in host_reads.mock_orders_in(live, flight_args)] == [mb]
    assert abs(left - available * 0.7) < available * 0.01  # taken once, not five times


async def test_a_booking_failing_after_its_order_leaves_nothing_booked(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order was placed, then the transaction failed: the buyer is told, no buy
    exists, the order is cancelled at the ad server and the failure is in the audit
    log naming it; the same key books the whole share again at once."""
    avail_args, flight_args = host_reads.flight(days_ahead=510)
    attempted: list[str] = []

    async def failing(tx: Any, buy: Any, *_a: Any, **_k: Any) -> None:
        attempted.append(buy.media_buy_id)
        raise RuntimeError("the disk is full")

    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        available = await host_reads.available(client, avail_args)
        request = {
            **host_reads.request(host_reads.budget(available, 0.6), flight_args),
            "idempotency_key": key("local-fail"),
        }
        monkeypatch.setattr(buy_events, "booked", failing)
        failed = await call(client, "create_media_buy", request)
        monkeypatch.undo()
        freed = await host_reads.available(client, avail_args)
        retried = await call(client, "create_media_buy", request)
        left = await host_reads.available(client, avail_args)
    assert failed.error_codes == ["SERVICE_UNAVAILABLE"], failed.data
    [mb] = attempted
    assert await stored_rows(live.settings, MediaBuy, MediaBuy.media_buy_id == mb) == []
    [(order_id, order)] = host_reads.mock_orders(live, mb)
    assert order.status == "canceled"
    audit = await audit_row(live.settings, mb, "media_buy.create_failed")
    assert audit.details["external_order_id"] == order_id
    assert audit.details["order_cancelled"] is True
    assert audit.details["error"] == "RuntimeError"
    assert freed == available
    assert retried.data["status"] == "submitted" and not retried.data.get("replayed")
    assert abs(left - available * 0.4) < available * 0.01


async def test_a_booking_stopped_after_its_order_leaves_no_claim_to_wait_out(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if the server were killed after the ad server took the order: nothing after
    it runs (no cancellation, no claim released). Nothing was committed — no
    provisioning buy holds inventory, no claim holds the key — so the buyer's retry
    books at once; the stopped attempt's order is left at the mock, named by no buy."""
    avail_args, flight_args = host_reads.flight(days_ahead=550)
    attempted: list[str] = []

    async def stopped(self: Any, tx: Any) -> Any:
        attempted.append(self.booking.buy.media_buy_id)
        raise RuntimeError("the server stopped")

    async def nothing(*_a: Any, **_k: Any) -> None:
        return None

    same_key = key("local-stop")
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        available = await host_reads.available(client, avail_args)
        request = {
            **host_reads.request(host_reads.budget(available, 0.6), flight_args),
            "idempotency_key": same_key,
        }
        monkeypatch.setattr(booking._Outcome, "_record", stopped)
        monkeypatch.setattr(booking._Outcome, "_withdraw", nothing)
        monkeypatch.setattr(idempotency, "_release", nothing)
        failed = await call(client, "create_media_buy", request)
        monkeypatch.undo()
        claims = await stored_rows(
            live.settings, IdempotencyRecord, col(IdempotencyRecord.key) == same_key
        )
        held = await host_reads.available(client, avail_args)
        retried = await call(client, "create_media_buy", request)
    assert failed.is_error
    [mb] = attempted
    assert claims == []
    assert held == available
    assert await stored_rows(live.settings, MediaBuy, MediaBuy.media_buy_id == mb) == []
    assert await stored_rows(live.settings, MediaBuy, MediaBuy.state == "provisioning") == []
    assert [o.status for _, o in host_reads.mock_orders(live, mb)] == ["pending_approval"]
    assert retried.data["status"] == "submitted", retried.data
