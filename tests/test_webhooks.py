"""Publisher webhooks end to end: the endpoint API, signed delivery to a receiver on
127.0.0.1, retries with backoff, dead letters and their retry, the SSRF guard, and
redelivery after a worker dies mid-send."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adcp_agent.db.models_events import EventDelivery
from adcp_agent.services import ssrf
from adcp_agent.services.webhook_signing import (
    signature_headers,
    verify_signature,
)
from tests.media_helpers import non_guaranteed
from tests.notifications_support import Clock, Publisher, Receiver, publisher
from tests.tenant_admin_support import error_of

LOCAL = {"allow_private_webhooks": ["127.0.0.1/32"]}


async def _hook(pub: Publisher, url: str, **body: object) -> dict[str, object]:
    response = await pub.api.request(
        "POST", f"/tenants/{pub.tenant_id}/webhooks", json={"url": url, **body}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _buy(pub: Publisher, budget: float = 5000) -> str:
    created = await pub.mcp("create_media_buy", non_guaranteed(budget=budget))
    assert created["status"] == "completed", created
    return created["media_buy_id"]


def test_signatures_verify_and_refuse_tampering() -> None:
    body = b'{"id":"evt_1","event":"media_buy.created"}'
    headers = signature_headers("s3cret-value-0123456789", body, 1_900_000_000)
    assert headers["X-ADCP-Signature"].startswith("t=1900000000,v1=")
    ok = verify_signature("s3cret-value-0123456789", headers, body, now=1_900_000_010)
    assert ok
    lowered = {k.lower(): v for k, v in headers.items()}
    assert verify_signature("s3cret-value-0123456789", lowered, body, now=1_900_000_010)
    assert not verify_signature("s3cret-value-0123456789", headers, body + b" ", now=1_900_000_010)
    assert not verify_signature("another-secret-012345678", headers, body, now=1_900_000_010)
    # Replay outside the tolerance window.
    assert not verify_signature("s3cret-value-0123456789", headers, body, now=1_900_000_400)
    assert not verify_signature("s3cret-value-0123456789", {}, body)
    # During a secret rotation several v1 values are accepted.
    rotated = headers["X-ADCP-Signature"] + ",v1=" + "0" * 64
    both = {"X-ADCP-Signature": "t=1900000000,v1=" + "f" * 64 + "," + rotated.split(",", 1)[1]}
    assert verify_signature("s3cret-value-0123456789", both, body, now=1_900_000_000)


async def test_webhook_endpoints_api(tmp_path: Path) -> None:
    async with publisher(tmp_path) as pub:
        path = f"/tenants/{pub.tenant_id}/webhooks"
        created = await _hook(
            pub, "https://hooks.example.com/adcp", events=["media_buy.created"], name="Ops"
        )
        listed = await pub.api.request("GET", path)
        bad_event = await pub.api.request(
            "POST", path, json={"url": "https://x.example.com", "events": ["media_buy.nope"]}
        )
        private = [
            await pub.api.request("POST", path, json={"url": url})
            for url in ("http://10.1.2.3/h", "http://169.254.169.254/latest", "http://localhost:9/")
        ]
        scheme = await pub.api.request("POST", path, json={"url": "ftp://files.example.com/"})
        deleted = await pub.api.request("DELETE", f"{path}/{created['webhook_id']}")
        again = await pub.api.request("DELETE", f"{path}/{created['webhook_id']}")
        after = await pub.api.request("GET", path)
        no_key = await pub.api.client.get("/api/v1/tenant-management" + path)
    assert created["secret"].startswith("whsec_") and "never shows it again" in str(
        created["message"]
    )
    assert created["signature_header"] == "X-ADCP-Signature"
    assert created["events"] == ["media_buy.created"]
    [view] = listed.json()["webhooks"]
    assert "secret" not in view and view["secret_hint"] == created["secret"][:10]
    assert error_of(bad_event)["details"]["field"] == "events"
    for response in private:
        assert response.status_code == 422, response.text
        assert "not a public address" in error_of(response)["message"]
    assert error_of(scheme)["details"]["field"] == "url"
    assert deleted.status_code == 200 and again.status_code == 404
    assert after.json()["webhooks"] == []
    assert no_key.status_code == 401


async def test_event_is_signed_and_delivered(tmp_path: Path) -> None:
    async with Receiver() as receiver, publisher(tmp_path, LOCAL) as pub:
        hook = await _hook(pub, receiver.url(), events=["media_buy.created"])
        media_buy_id = await _buy(pub)
        [event] = await pub.events(media_buy_id=media_buy_id)
        [pending] = await pub.deliveries(event.event_id)
        worker = pub.worker(Clock())
        try:
            attempted = await worker.run_once()
        finally:
            await worker.stop()
        listed = await pub.api.request("GET", "/events", params={"tenant_id": "pub"})
    assert event.event_type == "media_buy.created" and pending.status == "pending"
    assert attempted == 1
    [request] = receiver.requests
    assert request.path == "/hook"
    assert verify_signature(str(hook["secret"]), request.headers, request.body)
    body = json.loads(request.body)
    assert body["id"] == request.headers["x-adcp-event-id"] == event.event_id
    assert request.headers["x-adcp-event-type"] == "media_buy.created"
    assert body["data"]["media_buy_id"] == media_buy_id
    assert body["data"]["total_budget"] == 5000 and body["data"]["product_ids"]
    [view] = listed.json()["events"]
    assert view["status"] == "delivered"
    [delivery] = view["deliveries"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert delivery["destination"] == f"http://127.0.0.1:{receiver.port}/…"


async def test_an_event_goes_to_the_webhooks_that_want_it_and_to_slack(tmp_path: Path) -> None:
    """The tenant's live webhooks subscribed to the event's type (or to every type) and
    its Slack channel each get a delivery; a deleted webhook and one subscribed to
    other types get none."""
    slack = "https://hooks.slack.com/services/T0/B0/x"
    async with publisher(tmp_path, {"slack_webhook_url": slack}) as pub:
        created = await _hook(pub, "https://a.example.com/h", events=["media_buy.created"])
        every = await _hook(pub, "https://b.example.com/h")
        other = await _hook(pub, "https://c.example.com/h", events=["creative.approved"])
        gone = await _hook(pub, "https://d.example.com/h", events=["media_buy.created"])
        path = f"/tenants/{pub.tenant_id}/webhooks/{gone['webhook_id']}"
        assert (await pub.api.request("DELETE", path)).status_code == 200
        [event] = await pub.events(media_buy_id=await _buy(pub))
        deliveries = await pub.deliveries(event.event_id)
    assert other["webhook_id"] not in {d.target_id for d in deliveries}
    # (The Slack URL is stored sealed, as the tenant's features keep it.)
    assert sorted((d.channel, d.target_id or "") for d in deliveries) == [
        ("slack", ""),
        *sorted(("webhook", str(h["webhook_id"])) for h in (created, every)),
    ]
    assert {d.url for d in deliveries if d.channel == "webhook"} == {
        created["url"],
        every["url"],
    }


async def test_receiver_errors_are_retried_with_backoff(tmp_path: Path) -> None:
    async with Receiver() as receiver, publisher(tmp_path, LOCAL, outbox_backoff_seconds=10) as pub:
        await _hook(pub, receiver.url())
        receiver.statuses.extend([500, 503])
        await _buy(pub)
        [event] = await pub.events()
        clock = Clock()
        worker = pub.worker(clock)
        try:
            first = await worker.run_once()
            [after_one] = await pub.deliveries(event.event_id)
            too_early = await worker.run_once()
            clock.advance(5)  # base 10 s with the lowest jitter (x0.5)
            second = await worker.run_once()
            [after_two] = await pub.deliveries(event.event_id)
            clock.advance(10)  # doubled
            third = await worker.run_once()
        finally:
            await worker.stop()
        [done] = await pub.deliveries(event.event_id)
        [stored] = await pub.events()
    assert (first, too_early, second, third) == (1, 0, 1, 1)
    assert after_one.status == "pending" and after_one.last_status_code == 500
    assert "HTTP 500" in (after_one.last_error or "")
    assert after_one.next_attempt_at == clock.now - timedelta(seconds=15) + timedelta(seconds=5)
    assert after_two.next_attempt_at - (clock.now - timedelta(seconds=10)) == timedelta(seconds=10)
    assert done.status == "delivered" and done.attempts == 3 and done.last_error is None
    assert stored.status == "delivered"
    ids = {r.headers["x-adcp-event-id"] for r in receiver.requests}
    assert ids == {event.event_id} and len(receiver.requests) == 3
    assert [r.headers["x-adcp-delivery-attempt"] for r in receiver.requests] == ["1", "2", "3"]


async def test_dead_letter_after_max_attempts_then_admin_retry(tmp_path: Path) -> None:
    async with (
        Receiver() as receiver,
        publisher(tmp_path, LOCAL, outbox_max_attempts=3, outbox_backoff_seconds=1) as pub,
    ):
        await _hook(pub, receiver.url())
        receiver.default = 500
        await _buy(pub)
        [event] = await pub.events()
        clock = Clock()
        worker = pub.worker(clock)
        try:
            for _ in range(3):
                await worker.run_once()
                clock.advance(3600)
            assert await worker.run_once() == 0  # dead letters are not retried on their own
            dead = await pub.api.request("GET", "/events", params={"status": "dead"})
            pending = await pub.api.request("GET", "/events", params={"status": "pending"})
            not_dead = await pub.api.request("POST", "/events/evt_missing/retry")
            receiver.default = 200
            retried = await pub.api.request("POST", f"/events/{event.event_id}/retry")
            twice = await pub.api.request("POST", f"/events/{event.event_id}/retry")
            await worker.run_once()
        finally:
            await worker.stop()
        fetched = await pub.api.request("GET", f"/events/{event.event_id}")
        bad_status = await pub.api.request("GET", "/events", params={"status": "lost"})
    [dead_view] = dead.json()["events"]
    assert dead_view["event_id"] == event.event_id
    [delivery] = dead_view["deliveries"]
    assert delivery["status"] == "dead" and delivery["attempts"] == 3
    assert delivery["last_status_code"] == 500
    assert pending.json()["events"] == []
    assert not_dead.status_code == 404
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    assert twice.status_code == 409 and error_of(twice)["code"] == "INVALID_STATE"
    assert fetched.json()["status"] == "delivered"
    assert fetched.json()["deliveries"][0]["attempts"] == 1
    assert len(receiver.requests) == 4
    assert bad_status.status_code == 422


async def test_events_list_pages_with_a_cursor(tmp_path: Path) -> None:
    async with publisher(tmp_path) as pub:
        for _ in range(3):
            await _buy(pub, budget=1000)
        first = await pub.api.request("GET", "/events", params={"limit": 2})
        second = await pub.api.request(
            "GET", "/events", params={"limit": 2, "cursor": first.json()["next_cursor"]}
        )
        bad = await pub.api.request("GET", "/events", params={"cursor": "nonsense"})
    page1, page2 = first.json(), second.json()
    assert page1["has_more"] and not page2["has_more"]
    ids = [e["event_id"] for e in page1["events"] + page2["events"]]
    assert len(ids) == len(set(ids)) == 3
    assert all(e["status"] == "delivered" and e["deliveries"] == [] for e in page1["events"])
    assert error_of(bad)["details"]["field"] == "cursor"


async def test_ssrf_guard_checks_every_resolved_address(tmp_path: Path) -> None:
    closed = ssrf.Allowance()
    local = ssrf.Allowance.from_features(LOCAL)

    async def resolver(host: str, port: int) -> list[str]:
        return {
            "mixed.example": ["93.184.216.34", "10.0.0.7"],
            "public.example": ["93.184.216.34"],
        }[host]

    for url in (
        "http://10.0.0.1/",
        "http://169.254.169.254/",
        "http://[::1]/",
        "http://[::ffff:10.0.0.1]/",
    ):
        with pytest.raises(ssrf.BlockedDestination):
            await ssrf.resolve(url, closed, resolver)
    with pytest.raises(ssrf.BlockedDestination, match="10.0.0.7"):
        await ssrf.resolve("https://mixed.example/h", closed, resolver)
    with pytest.raises(ssrf.BlockedDestination):
        await ssrf.resolve("http://10.0.0.1/", local, resolver)  # only 127.0.0.1 is allowed
    assert (await ssrf.resolve("http://127.0.0.1:9/", local, resolver)).ip == "127.0.0.1"
    pinned = await ssrf.resolve("https://public.example/h", closed, resolver)
    assert (pinned.ip, pinned.host, pinned.port) == ("93.184.216.34", "public.example", 443)

    # At delivery time: a registered hostname that now resolves inside the network.
    async def rebinding(host: str, port: int) -> list[str]:
        return ["10.20.30.40"]

    async with Receiver() as receiver, publisher(tmp_path) as pub:
        await _hook(pub, f"http://hooks.partner.example:{receiver.port}/hook")
        await _buy(pub)
        [event] = await pub.events()
        worker = pub.worker(Clock(), resolver=rebinding)
        try:
            await worker.run_once()
        finally:
            await worker.stop()
        [delivery] = await pub.deliveries(event.event_id)
    assert delivery.status == "dead" and "10.20.30.40" in (delivery.last_error or "")
    assert receiver.requests == []


async def test_worker_stopped_mid_delivery_is_redelivered_after_the_lease(
    tmp_path: Path,
) -> None:
    async with Receiver() as receiver, publisher(tmp_path, LOCAL, outbox_lease_seconds=60) as pub:
        await _hook(pub, receiver.url())
        await _buy(pub)
        [event] = await pub.events()
        receiver.hold = asyncio.Event()
        clock = Clock()
        first = pub.worker(clock, worker_id="worker_a")
        task = asyncio.create_task(first.run_once())
        await asyncio.wait_for(receiver.arrived.wait(), timeout=10)
        task.cancel()  # the process dies while the receiver is still answering
        with pytest.raises(asyncio.CancelledError):
            await task
        await first.stop()
        [leased] = await pub.deliveries(event.event_id)
        receiver.hold = None
        second = pub.worker(clock, worker_id="worker_b")
        try:
            during_lease = await second.run_once()  # never two senders at once
            clock.advance(61)
            after_lease = await second.run_once()
        finally:
            await second.stop()
        [done] = await pub.deliveries(event.event_id)
    assert leased.status == "pending" and (leased.lease_owner or "").startswith("worker_a:")
    assert (during_lease, after_lease) == (0, 1)
    assert done.status == "delivered" and done.attempts == 2
    assert [r.headers["x-adcp-event-id"] for r in receiver.requests] == [event.event_id] * 2


async def test_delivery_is_pinned_to_the_checked_address_and_never_redirected(
    tmp_path: Path,
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        assert host == "hooks.partner.example"
        return ["127.0.0.1"]

    async with Receiver() as receiver, publisher(tmp_path, LOCAL) as pub:
        await _hook(pub, f"http://hooks.partner.example:{receiver.port}/in")
        receiver.statuses.append(302)
        await _buy(pub)
        [event] = await pub.events()
        clock = Clock()
        worker = pub.worker(clock, resolver=resolver)
        try:
            await worker.run_once()
            [redirected] = await pub.deliveries(event.event_id)
            clock.advance(3600)
            await worker.run_once()
        finally:
            await worker.stop()
        [delivered] = await pub.deliveries(event.event_id)
    assert redirected.status == "pending" and redirected.last_status_code == 302
    assert "redirects are not followed" in (redirected.last_error or "")
    assert delivered.status == "delivered"
    assert [r.headers["host"] for r in receiver.requests] == [
        f"hooks.partner.example:{receiver.port}"
    ] * 2


def test_a_receivers_retry_after_is_read_within_bounds() -> None:
    """Whatever a receiver puts in Retry-After, the worker gets a wait or none, never an
    exception: "²" passes str.isdigit but not int(); 10**30 s overflows timedelta."""
    import httpx

    from adcp_agent.services.outbox_worker import RETRY_AFTER_CAP_S, _retry_after

    now = datetime.now(UTC)

    def wait(value: str) -> timedelta | None:
        raw = value.encode("latin-1")  # as the receiver's bytes arrive
        return _retry_after(httpx.Response(429, headers={"retry-after": raw}), now)

    assert wait("120") == timedelta(seconds=120)
    assert wait("1" + "0" * 30) == timedelta(seconds=RETRY_AFTER_CAP_S)
    assert wait("\u00b2") is None
    assert wait("soon") is None
    assert wait("Wed, 21 Oct 2099 07:28:00 GMT") > timedelta(days=1)


async def test_one_destinations_deliveries_go_in_order_and_destinations_at_once(
    tmp_path: Path,
) -> None:
    """Three events for two webhooks: each webhook gets its three one after the other,
    oldest first (a buy's numbered reports arrive numbered); the two webhooks are
    served at the same time."""
    async with Receiver() as receiver, publisher(tmp_path, LOCAL) as pub:
        for path in ("/a", "/b"):
            await _hook(pub, receiver.url(path), events=["media_buy.created"])
        made = []
        for _ in range(3):
            [event] = await pub.events(media_buy_id=await _buy(pub))
            made.append(event.event_id)
        worker = pub.worker(Clock())
        steps: list[tuple[str, str, str]] = []
        send = worker._deliver

        async def recorded(delivery: EventDelivery) -> None:
            steps.append(("start", delivery.url, delivery.event_id))
            await asyncio.sleep(0)
            await send(delivery)
            steps.append(("end", delivery.url, delivery.event_id))

        worker._deliver = recorded  # type: ignore[method-assign]
        try:
            attempted = await worker.run_once()
        finally:
            await worker.stop()
    assert attempted == 6
    for path in ("/a", "/b"):
        mine = [(kind, event) for kind, url, event in steps if url == receiver.url(path)]
        assert mine == [(kind, event) for event in made for kind in ("start", "end")]
        arrived = [json.loads(r.body)["id"] for r in receiver.requests if r.path == path]
        assert arrived == made
    first_end = next(i for i, step in enumerate(steps) if step[0] == "end")
    assert {url for _, url, _ in steps[:first_end]} == {receiver.url("/a"), receiver.url("/b")}
