"""Work a stopped server left half done is put right: a booking interrupted between its
provisional commit and its booked state stops holding inventory, and what an
interrupted update reserved ahead of the ad server is undone once its lease lapses.

"The server stopped" is played by skipping the step that gives back what was reserved
(``_abandon``) when the ad server fails; the sweep runs as the outbox worker would,
with a clock moved past the lease or the stranding age."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from adcp_agent_adapters.mock import MockAdapter, load_state
from sqlmodel import col, select

from adcp_agent.db.models import AuditLog
from adcp_agent.db.models_events import OutboxEvent
from adcp_agent.db.models_media import IdempotencyRecord, MediaBuy, Package
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import booking, idempotency, interrupted, media_updates
from adcp_agent.state import AppState
from tests import host_reads
from tests.media_helpers import key, non_guaranteed
from tests.notifications_support import publisher
from tests.support import DEMO_TOKEN, LiveServer, audit_row, call, mcp_client, stored_rows


@pytest.fixture(autouse=True)
def _a_remote_ad_server() -> Iterator[None]:
    """The mock ad server stands in for a remote one here: called between the
    booking's two commits (services.booking), which is what a stop can interrupt.
    (Not ``monkeypatch``: the tests undo theirs midway.)"""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MockAdapter, "orders_are_local", False)
        yield


async def _buy(client: Any, mb: str) -> dict[str, Any]:
    listed = await call(client, "get_media_buys", {"media_buy_ids": [mb]})
    return listed.data["media_buys"][0]


async def _sweep(live: LiveServer, now: datetime) -> tuple[int, int]:
    """The sweep as the outbox worker runs it, from a server state of the test's own
    on the live server's database (and its mock ad server's journal)."""
    state = AppState.from_settings(live.settings)
    try:
        return await interrupted.sweep(state, now)
    finally:
        await state.db.dispose()


def _update(mb: str, **patch: Any) -> dict[str, Any]:
    return {"media_buy_id": mb, "idempotency_key": key("u"), **patch}


def _stop_during_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next update fails at the ad server and is not undone: as if the server
    stopped while the ad server had the change."""

    async def refused(*_a: Any) -> tuple[list[str], AdcpError, int]:
        return [], AdcpError("SERVICE_UNAVAILABLE", "stopped", recovery="transient"), 0

    async def stopped(*_a: Any, **_k: Any) -> None:
        return None

    monkeypatch.setattr(media_updates, "_apply", refused)
    monkeypatch.setattr(media_updates, "_abandon", stopped)


async def _book_host_read(
    live: LiveServer, client: Any, fraction: float, days_ahead: int
) -> dict[str, Any]:
    avail_args, flight_args = host_reads.flight(days_ahead)
    available = await host_reads.available(client, avail_args)
    booked = await call(
        client,
        "create_media_buy",
        host_reads.request(host_reads.budget(available, fraction), flight_args),
    )
    assert not booked.is_error, booked.data
    mb = booked.data["message"].split()[2]
    buy = await _buy(client, mb)
    [row] = await stored_rows(live.settings, Package, Package.media_buy_id == mb)
    return {
        "mb": mb,
        "available": available,
        "avail_args": avail_args,
        "buy": buy,
        "goal": row.impressions_goal,
    }


async def test_what_an_interrupted_update_reserved_is_undone_when_its_lease_lapses(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        b = await _book_host_read(live, client, 0.3, days_ahead=230)
        mb, available, avail_args = b["mb"], b["available"], b["avail_args"]
        package = b["buy"]["packages"][0]
        _stop_during_updates(monkeypatch)
        grow = {
            "packages": [
                {"package_id": package["package_id"], "budget": host_reads.budget(available, 0.8)}
            ]
        }
        failed = await call(client, "update_media_buy", _update(mb, **grow))
        monkeypatch.undo()
        held = await host_reads.available(client, avail_args)
        early = await _sweep(live, utcnow())
        still_held = await host_reads.available(client, avail_args)
        swept = await _sweep(live, utcnow() + media_updates.LEASE + timedelta(seconds=1))
        freed = await host_reads.available(client, avail_args)
        after = await _buy(client, mb)
        grown = await call(
            client,
            "update_media_buy",
            _update(
                mb,
                packages=[
                    {
                        "package_id": package["package_id"],
                        "budget": host_reads.budget(available, 0.5),
                    }
                ],
            ),
        )
        finally_left = await host_reads.available(client, avail_args)
    assert failed.error_codes == ["SERVICE_UNAVAILABLE"]
    # Until the lease lapses the larger goal stays reserved: the ad server may have it.
    assert abs(held - available * 0.2) < available * 0.01
    assert early[1] == 0 and abs(still_held - held) < available * 0.001
    assert swept[1] >= 1
    assert abs(freed - available * 0.7) < available * 0.01
    assert after["revision"] == 1 and after["packages"][0]["budget"] == package["budget"]
    [audit] = await stored_rows(
        live.settings,
        AuditLog,
        AuditLog.target_id == mb,
        AuditLog.action == "media_buy.update_interrupted",
    )
    assert audit.actor == "system" and not audit.success
    assert audit.details["restored"] == {f"{package['package_id']}.impressions_goal": b["goal"]}
    assert not grown.is_error, grown.data
    assert grown.data["revision"] == 2
    assert abs(finally_left - available * 0.5) < available * 0.01


async def test_a_guaranteed_package_an_interrupted_update_added_goes_when_its_lease_lapses(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A guaranteed package added to a buy awaiting approval holds its inventory from
    before the ad server is asked; the server stops there: once the lease lapses the
    package is removed and its inventory offered again."""
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        b = await _book_host_read(live, client, 0.3, days_ahead=620)
        mb, available, avail_args = b["mb"], b["available"], b["avail_args"]
        _stop_during_updates(monkeypatch)
        extra = {
            "product_id": "podcast_host_read",
            "pricing_option_id": "host_read_cpm",
            "budget": host_reads.budget(available, 0.4),
        }
        failed = await call(client, "update_media_buy", _update(mb, new_packages=[extra]))
        monkeypatch.undo()
        held = await host_reads.available(client, avail_args)
        [added] = [
            p.package_id
            for p in await stored_rows(live.settings, Package, Package.media_buy_id == mb)
            if p.package_id != b["buy"]["packages"][0]["package_id"]
        ]
        swept = await _sweep(live, utcnow() + media_updates.LEASE + timedelta(seconds=1))
        freed = await host_reads.available(client, avail_args)
        after = await _buy(client, mb)
    assert failed.error_codes == ["SERVICE_UNAVAILABLE"]
    assert abs(held - available * 0.3) < available * 0.01  # 0.3 booked, 0.4 held ahead
    assert swept[1] >= 1
    assert abs(freed - available * 0.7) < available * 0.01
    assert after["revision"] == 1 and len(after["packages"]) == 1
    [audit] = await stored_rows(
        live.settings,
        AuditLog,
        AuditLog.target_id == mb,
        AuditLog.action == "media_buy.update_interrupted",
    )
    assert audit.details["restored"] == {added: "removed"}


async def test_the_next_update_undoes_a_lapsed_lease_before_planning(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted update had moved the end ahead of the ad server; the next update
    (a budget change) finds the lease lapsed, puts the end back and plans from there.
    Taking the lapsed lease over instead kept an end nobody had been told of."""
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        b = await _book_host_read(live, client, 0.2, days_ahead=260)
        mb, original = b["mb"], b["buy"]
        package = original["packages"][0]
        end = datetime.fromisoformat(original["end_time"].replace("Z", "+00:00"))
        _stop_during_updates(monkeypatch)
        later = (end + timedelta(days=5)).isoformat().replace("+00:00", "Z")
        failed = await call(client, "update_media_buy", _update(mb, end_time=later))
        monkeypatch.undo()
        moved = await stored_rows(live.settings, MediaBuy, MediaBuy.media_buy_id == mb)
        lapsed = utcnow() + media_updates.LEASE + timedelta(seconds=1)
        monkeypatch.setattr(media_updates, "utcnow", lambda: lapsed)
        budget = {
            "packages": [{"package_id": package["package_id"], "budget": package["budget"] + 100}]
        }
        changed = await call(client, "update_media_buy", _update(mb, **budget))
        monkeypatch.undo()
        after = await _buy(client, mb)
    assert failed.error_codes == ["SERVICE_UNAVAILABLE"]
    assert moved[0].end_time == end + timedelta(days=5)  # reserved ahead of the ad server
    assert not changed.is_error, changed.data
    assert after["end_time"] == original["end_time"]
    assert after["revision"] == 2 and after["packages"][0]["budget"] == package["budget"] + 100
    [row] = await stored_rows(live.settings, MediaBuy, MediaBuy.media_buy_id == mb)
    assert row.update_lease is None and row.update_lease_undo is None


async def test_a_value_changed_since_the_interruption_is_kept(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only what is still as the interrupted update left it is put back."""
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        b = await _book_host_read(live, client, 0.2, days_ahead=290)
        mb, available = b["mb"], b["available"]
        package_id = b["buy"]["packages"][0]["package_id"]
        _stop_during_updates(monkeypatch)
        grow = {
            "packages": [{"package_id": package_id, "budget": host_reads.budget(available, 0.4)}]
        }
        await call(client, "update_media_buy", _update(mb, **grow))
        monkeypatch.undo()
    state = AppState.from_settings(live.settings)
    db = state.db
    try:
        async with db.transaction() as session:
            row = await session.get(Package, package_id)
            assert row is not None
            row.impressions_goal = 12345  # someone else's change, after the update's
            session.add(row)
        released = await interrupted.release_lease(
            state, mb, utcnow() + media_updates.LEASE + timedelta(seconds=1)
        )
        again = await interrupted.release_lease(
            state, mb, utcnow() + media_updates.LEASE + timedelta(seconds=1)
        )
        async with db.session() as session:
            kept = await session.get(Package, package_id)
            buy = await session.get(MediaBuy, mb)
    finally:
        await db.dispose()
    assert released and not again
    assert kept is not None and kept.impressions_goal == 12345
    assert buy is not None and buy.update_lease is None


async def test_a_line_an_interrupted_update_added_is_paused_at_the_ad_server(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ad server added the new package's line, then the server stopped before the
    update committed: no package records that line. Once the lease lapses the sweep
    finds it (the adapter's find_line) and pauses it, so it spends nothing untracked."""
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        booked = await call(client, "create_media_buy", non_guaranteed())
        assert not booked.is_error, booked.data
        mb, first = booked.data["media_buy_id"], booked.data["packages"][0]["package_id"]

        async def crashed(*_a: Any, **_k: Any) -> Any:
            raise AdcpError("SERVICE_UNAVAILABLE", "stopped", recovery="transient")

        async def stopped(*_a: Any, **_k: Any) -> None:
            return None

        monkeypatch.setattr(media_updates, "_write", crashed)
        monkeypatch.setattr(media_updates, "_abandon", stopped)
        extra = {**non_guaranteed()["packages"][0], "budget": 1500}
        failed = await call(client, "update_media_buy", _update(mb, new_packages=[extra]))
        monkeypatch.undo()
        swept = await _sweep(live, utcnow() + media_updates.LEASE + timedelta(seconds=1))
        after = await _buy(client, mb)
    orders, _ = load_state(live.data_dir / "adapters" / "demo-mock.state")
    [order] = [o for o in orders.values() if o.spec.media_buy_id == mb]
    [(line_id, orphan)] = [(k, ln) for k, ln in order.lines.items() if ln.spec.package_id != first]
    assert failed.is_error and swept[1] >= 1
    assert orphan.status == "paused"
    assert [p["package_id"] for p in after["packages"]] == [first]
    audit = await audit_row(live.settings, mb, "media_buy.update_interrupted")
    assert audit.details["lines_paused"] == {orphan.spec.package_id: line_id}


def _stop_during_bookings(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refused(self: MockAdapter, spec: Any) -> Any:
        raise AdcpError("SERVICE_UNAVAILABLE", "stopped", recovery="transient")

    async def stopped(*_a: Any, **_k: Any) -> None:
        return None

    monkeypatch.setattr(MockAdapter, "create_order", refused)
    monkeypatch.setattr(booking, "_abandon", stopped)


async def test_a_stranded_booking_stops_holding_inventory(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    avail_args, flight_args = host_reads.flight(days_ahead=320)
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        available = await host_reads.available(client, avail_args)
        _stop_during_bookings(monkeypatch)
        failed = await call(
            client,
            "create_media_buy",
            host_reads.request(host_reads.budget(available, 0.6), flight_args),
        )
        monkeypatch.undo()
        held = await host_reads.available(client, avail_args)
        stranded = await _provisioning(live)
        early = await _sweep(live, utcnow())
        swept = await _sweep(live, utcnow() + interrupted.STRANDED_AFTER + timedelta(seconds=1))
        freed = await host_reads.available(client, avail_args)
        rebooked = await call(
            client,
            "create_media_buy",
            host_reads.request(host_reads.budget(available, 0.6), flight_args),
        )
    assert failed.error_codes == ["SERVICE_UNAVAILABLE"]
    assert abs(held - available * 0.4) < available * 0.01  # held by nobody's buy
    assert early[0] == 0 and swept[0] >= 1
    assert abs(freed - available) < available * 0.01
    assert not rebooked.is_error, rebooked.data
    mb = stranded.media_buy_id
    assert await stored_rows(live.settings, MediaBuy, MediaBuy.media_buy_id == mb) == []
    audit = await audit_row(live.settings, mb, "media_buy.create_interrupted")
    assert audit.details["ad_server"] == "mock" and audit.details["external_order_id"] is None
    assert audit.details["note"] == "The ad server holds no order for it."
    event = await _failed_event(live, mb)
    assert event.payload["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert event.payload["product_ids"] == ["podcast_host_read"]


def _stop_after_the_order(monkeypatch: pytest.MonkeyPatch, *, claim_stays: bool = False) -> None:
    """The next booking stops after the ad server took its order, before its booked
    state: nothing it would do after runs (``claim_stays``: not even releasing its
    idempotency claim, as when the process is killed)."""

    async def stopped(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("the server stopped")

    async def nothing(*_a: Any, **_k: Any) -> None:
        return None

    monkeypatch.setattr(booking._Outcome, "_book", stopped)
    monkeypatch.setattr(interrupted, "release_unbooked", nothing)
    if claim_stays:
        monkeypatch.setattr(idempotency, "_release", nothing)


async def _age_claims(live: LiveServer, by: timedelta) -> None:
    """Move every idempotency claim's last change ``by`` into the past."""
    state = AppState.from_settings(live.settings)
    try:
        async with state.db.transaction() as session:
            for record in (await session.exec(select(IdempotencyRecord))).all():
                record.updated_at -= by
                session.add(record)
    finally:
        await state.db.dispose()


async def _provisioning(live: LiveServer) -> MediaBuy:
    """The one buy a stopped booking left provisioning."""
    [buy] = await stored_rows(
        live.settings, MediaBuy, MediaBuy.state == "provisioning", MediaBuy.tenant_id == "demo"
    )
    return buy


async def _failed_event(live: LiveServer, mb: str) -> OutboxEvent:
    [event] = await stored_rows(
        live.settings,
        OutboxEvent,
        OutboxEvent.media_buy_id == mb,
        col(OutboxEvent.event_type) == "media_buy.failed",
    )
    return event


async def test_a_retry_after_a_stopped_server_releases_what_its_attempt_left(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server was killed mid-booking: its claim stays unanswered and its buy holds
    60% of the flight. The buyer's retry with the same key, once the claim is stale,
    releases that buy (cancelling its order) before booking — not beside it, where it
    would find only 40% left. While the ad server cannot cancel the order, the retry
    is told to come back, and nothing is released."""
    avail_args, flight_args = host_reads.flight(days_ahead=410)
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        available = await host_reads.available(client, avail_args)
        request = host_reads.request(host_reads.budget(available, 0.6), flight_args)
        _stop_after_the_order(monkeypatch, claim_stays=True)
        killed = await call(client, "create_media_buy", request)
        monkeypatch.undo()
        left = await _provisioning(live)
        monkeypatch.setattr(idempotency, "WAIT_FOR_IN_FLIGHT", 0.2)  # not 10 s
        too_soon = await call(client, "create_media_buy", request)
        monkeypatch.undo()
        await _age_claims(live, idempotency.STALE_AFTER + timedelta(seconds=5))

        async def unreachable(self: MockAdapter, order_id: str, action: Any) -> None:
            raise ConnectionError("the ad server is down")

        monkeypatch.setattr(MockAdapter, "order_action", unreachable)
        ad_server_down = await call(client, "create_media_buy", request)
        monkeypatch.undo()
        still = await stored_rows(
            live.settings, MediaBuy, MediaBuy.media_buy_id == left.media_buy_id
        )
        retried = await call(client, "create_media_buy", request)
        replayed = await call(client, "create_media_buy", request)
        after = await host_reads.available(client, avail_args)
    assert killed.is_error
    assert too_soon.error_codes == ["IDEMPOTENCY_IN_FLIGHT"]  # not stale yet: it may be running
    assert ad_server_down.error_codes == ["SERVICE_UNAVAILABLE"]
    assert ad_server_down.error["field"] == "idempotency_key"
    assert [b.state for b in still] == ["provisioning"]
    assert retried.data["status"] == "submitted", retried.data
    assert replayed.data.get("replayed") is True
    mb = left.media_buy_id
    assert await stored_rows(live.settings, MediaBuy, MediaBuy.media_buy_id == mb) == []
    [(_, order)] = host_reads.mock_orders(live, mb)
    assert order.status == "canceled"
    audit = await audit_row(live.settings, mb, "media_buy.create_interrupted")
    assert audit.details["released_by"] == "retry"
    event = await _failed_event(live, mb)
    assert "retry with the same idempotency key" in event.payload["error"]["message"]
    assert abs(after - available * 0.4) < available * 0.01  # one booking's worth, not two


async def test_a_booking_that_fails_to_commit_releases_its_buy_at_once(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The booked state did not commit and the buyer was told: the provisional buy
    goes at once (its order cancelled), so a retry books the whole share again."""
    avail_args, flight_args = host_reads.flight(days_ahead=440)

    async def failing(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("the disk is full")

    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        available = await host_reads.available(client, avail_args)
        request = host_reads.request(host_reads.budget(available, 0.6), flight_args)
        monkeypatch.setattr(booking._Outcome, "_book", failing)
        failed = await call(client, "create_media_buy", request)
        monkeypatch.undo()
        freed = await host_reads.available(client, avail_args)
        retried = await call(client, "create_media_buy", request)
    assert failed.is_error
    assert abs(freed - available) < available * 0.01
    assert retried.data["status"] == "submitted", retried.data
    [audit] = [
        a
        for a in await stored_rows(
            live.settings, AuditLog, AuditLog.action == "media_buy.create_interrupted"
        )
        if a.details["released_by"] == "failed"
    ]
    [(order_id, order)] = host_reads.mock_orders(live, audit.target_id)
    assert order.status == "canceled" and audit.details["external_order_id"] == order_id


async def test_the_order_of_a_stranded_booking_is_cancelled_at_the_ad_server(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server stopped after the ad server took the order, before the booked state
    committed: the sweep finds that order (the adapter's find_order) and cancels it
    before releasing the buy, so nothing serves that no buy records."""
    avail_args, flight_args = host_reads.flight(days_ahead=380)

    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        available = await host_reads.available(client, avail_args)
        _stop_after_the_order(monkeypatch)
        failed = await call(
            client,
            "create_media_buy",
            host_reads.request(host_reads.budget(available, 0.3), flight_args),
        )
        monkeypatch.undo()
        stranded = await _provisioning(live)
        swept = await _sweep(live, utcnow() + interrupted.STRANDED_AFTER + timedelta(seconds=1))
        freed = await host_reads.available(client, avail_args)
    mb = stranded.media_buy_id
    orders, _ = load_state(live.data_dir / "adapters" / "demo-mock.state")
    [(order_id, order)] = [(k, o) for k, o in orders.items() if o.spec.media_buy_id == mb]
    assert failed.is_error
    assert swept[0] >= 1 and abs(freed - available) < available * 0.01
    assert order.status == "canceled"
    audit = await audit_row(live.settings, mb, "media_buy.create_interrupted")
    assert audit.details["external_order_id"] == order_id
    assert audit.details["note"] == f"Its order {order_id} was cancelled."


async def test_a_booking_back_after_its_release_cancels_its_order(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The ad server answered after the buy had been released as stranded: the order
    it made is cancelled and the buyer told nothing was booked — never a buy that
    exists at the ad server only, or an answer for rows that are gone."""
    avail_args, flight_args = host_reads.flight(days_ahead=350)
    entered, proceed = threading.Event(), threading.Event()
    create_order, order_action = MockAdapter.create_order, MockAdapter.order_action
    made: list[str] = []
    actions: list[tuple[str, str]] = []

    async def slow(self: MockAdapter, spec: Any) -> Any:
        result = await create_order(self, spec)
        made.append(result.external_order_id)
        entered.set()
        await asyncio.to_thread(proceed.wait, 10)
        return result

    async def recorded(self: MockAdapter, order_id: str, action: Any) -> None:
        actions.append((order_id, action))
        await order_action(self, order_id, action)

    monkeypatch.setattr(MockAdapter, "create_order", slow)
    monkeypatch.setattr(MockAdapter, "order_action", recorded)
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        available = await host_reads.available(client, avail_args)
        booking = asyncio.ensure_future(
            call(
                client,
                "create_media_buy",
                host_reads.request(host_reads.budget(available, 0.5), flight_args),
            )
        )
        assert await asyncio.to_thread(entered.wait, 10)
        swept = await _sweep(live, utcnow() + interrupted.STRANDED_AFTER + timedelta(seconds=1))
        proceed.set()
        late = await booking
        monkeypatch.undo()
        left = await host_reads.available(client, avail_args)
    assert swept[0] >= 1
    assert late.error_codes == ["SERVICE_UNAVAILABLE"] and "released" in late.error["message"]
    # The sweep found the order and cancelled it; the booking, back, cancelled it too.
    assert actions == [(made[0], "cancel"), (made[0], "cancel")]
    assert "could not cancel" not in caplog.text  # the mock ad server took it
    [note] = await stored_rows(
        live.settings, AuditLog, AuditLog.action == "media_buy.late_order_cancelled"
    )
    assert note.success and note.details["external_order_id"] == made[0]
    assert abs(left - available) < available * 0.01
    assert await stored_rows(live.settings, MediaBuy, MediaBuy.external_order_id == made[0]) == []


async def test_the_outbox_worker_sweeps_what_a_stopped_server_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's periodic check releases a stranded booking; the buyer's webhook
    event goes out with it."""
    async with publisher(tmp_path) as pub:
        _stop_during_bookings(monkeypatch)
        failed = await pub.mcp("create_media_buy", non_guaranteed(budget=2000))
        monkeypatch.undo()
        db = pub.api.state.db
        long_ago = utcnow() - interrupted.STRANDED_AFTER - timedelta(minutes=1)
        async with db.transaction() as session:
            [buy] = (await session.exec(select(MediaBuy))).all()
            assert buy.state == "provisioning"
            buy.created_at = long_ago
            session.add(buy)
        await pub.worker(clock=utcnow).tick()
        async with db.session() as session:
            left = (await session.exec(select(MediaBuy))).all()
        [event] = await pub.events(event_type="media_buy.failed")
    assert failed["errors"][0]["code"] == "SERVICE_UNAVAILABLE"
    assert left == []
    assert event.media_buy_id == buy.media_buy_id and event.principal_id == buy.principal_id
