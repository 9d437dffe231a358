"""The delivery worker: leases due deliveries, sends them, retries with exponential
backoff and jitter, dead-letters after ``outbox_max_attempts``, and once a while emits
``campaign.completed`` for buys whose flight has ended.

At-least-once: a delivery is marked delivered only after the receiver answered 2xx, so
a worker stopped mid-send (or a crashed process) leaves a lease that simply expires and
another worker sends the same event again — same event id, which receivers dedupe on.
Deliveries to one destination go one at a time, oldest first (a retried one does
not hold up those after it); destinations are served at once.
Time, sleeping, randomness and DNS are injected, so tests drive it without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, update

from adcp_agent.db.models_events import EventDelivery
from adcp_agent.db.models_media import COMPLETION_DUE, MediaBuy
from adcp_agent.db.types import UTCDateTime, utcnow
from adcp_agent.sealing import SecretKeyError
from adcp_agent.services import (
    deliveries,
    governance_delivery,
    interrupted,
    outbox,
    reporting_webhooks,
    ssrf,
)
from adcp_agent.services.identity import new_id
from adcp_agent.state import AppState
from adcp_agent.tls import client_tls

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
BATCH = 20
RUNNING_STATES = ("live", "paused")
# Running buys whose flight has ended and whose completion is not announced yet, read
# from the partial index ix_media_buys_completion_due: its condition is spelled the
# same, so the database can tell the index covers the query. SQLite keeps no statistics
# here and would rather walk ix_media_buys_state (every running buy of the history), so
# it is told which index to use (INDEXED BY fails loudly if the index cannot serve).
_COMPLETION_DUE = """
    SELECT media_buy_id FROM media_buys{hint}
    WHERE {due} AND end_time <= :now ORDER BY end_time LIMIT 100
"""


def _completion_due(sqlite: bool) -> TextClause:
    hint = " INDEXED BY ix_media_buys_completion_due" if sqlite else ""
    return text(_COMPLETION_DUE.format(hint=hint, due=COMPLETION_DUE)).bindparams(
        bindparam("now", type_=UTCDateTime())
    )


def backoff(attempt: int, base: float, cap: float, rand: float) -> timedelta:
    """``base * 2**(attempt-1)`` capped, scaled by a jitter factor in [0.5, 1) so many
    failed deliveries do not all come back at the same second."""
    raw = min(cap, base * 2 ** max(attempt - 1, 0))
    return timedelta(seconds=raw * (0.5 + rand / 2))


RETRY_AFTER_CAP_S = 366 * 86400


def _retry_after(response: httpx.Response, now: datetime) -> timedelta | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    seconds = value.strip()
    if seconds.isascii() and seconds.isdigit():  # ("²" is a digit to str.isdigit)
        # A receiver's year-long (or 10**30 s) wait is capped by the backoff cap anyway;
        # timedelta itself overflows past ~10**14 s.
        return timedelta(seconds=min(int(seconds), RETRY_AFTER_CAP_S))
    try:
        return max(parsedate_to_datetime(value) - now, timedelta(0))
    except (TypeError, ValueError):
        return None


def by_destination(claimed: list[EventDelivery]) -> list[list[EventDelivery]]:
    """The claimed deliveries per destination (channel and URL), oldest first."""
    lines: dict[tuple[str, str], list[EventDelivery]] = {}
    for delivery in sorted(claimed, key=lambda d: (d.created_at, d.delivery_id)):
        lines.setdefault((delivery.channel, delivery.url), []).append(delivery)
    return list(lines.values())


class OutboxWorker:
    def __init__(
        self,
        state: AppState,
        *,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        resolver: ssrf.Resolver = ssrf.system_resolver,
        worker_id: str | None = None,
        business_clock: Clock | None = None,
    ) -> None:
        self.state = state
        # Flights end on the business clock (simulated when the server runs on one).
        self.business_now: Clock = business_clock or state.clock.now
        self.settings = state.settings
        self.clock = clock
        self.sleep = sleep
        self.rand = rand
        self.resolver = resolver
        self.worker_id = worker_id or new_id("worker")
        timeout = httpx.Timeout(self.settings.webhook_timeout_seconds, connect=5.0)
        self.client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            verify=client_tls(trust_env=False),
        )
        self._task: asyncio.Task[None] | None = None
        self._next_campaign_check: datetime | None = None
        self._completion_due = _completion_due(state.db.is_sqlite)

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many deliveries were attempted."""
        claimed = await deliveries.claim(
            self.state.db,
            worker_id=self.worker_id,
            now=self.clock(),
            lease=timedelta(seconds=self.settings.outbox_lease_seconds),
            limit=BATCH,
        )
        await asyncio.gather(*(self._deliver_in_order(line) for line in by_destination(claimed)))
        return len(claimed)

    async def _deliver_in_order(self, line: list[EventDelivery]) -> None:
        """One destination's deliveries, one after the other in the order they were
        made (a buy's numbered reports arrive numbered); destinations run at once."""
        for delivery in line:
            try:
                await self._deliver(delivery)
            except Exception:  # its lease expires; it is retried then
                log.exception("delivery %s failed unexpectedly", delivery.delivery_id)

    async def _deliver(self, delivery: EventDelivery) -> None:
        db, max_attempts = self.state.db, self.settings.outbox_max_attempts
        if delivery.attempts > max_attempts:
            await deliveries.finish(
                db,
                delivery,
                status="dead",
                now=self.clock(),
                error="gave up: the final attempt was interrupted (worker stopped or crashed)",
            )
            return
        status_code: int | None = None
        wait: timedelta | None = None
        try:
            outgoing = await deliveries.compose(
                db,
                delivery,
                now=self.clock(),
                base_url=self.settings.base_url(),
                box=self.state.secrets,
            )
            target = await ssrf.resolve(outgoing.url, outgoing.allowance, self.resolver)
            status_code, error, wait = await self._post(outgoing, target)
        except (deliveries.Undeliverable, ssrf.BlockedDestination) as exc:
            await deliveries.finish(db, delivery, status="dead", now=self.clock(), error=str(exc))
            return
        except (httpx.HTTPError, ConnectionError, SecretKeyError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        now = self.clock()
        if error is None:
            await deliveries.finish(
                db, delivery, status="delivered", now=now, status_code=status_code
            )
            return
        if delivery.attempts >= max_attempts:
            log.warning(
                "delivery %s dead after %s attempts: %s",
                delivery.delivery_id,
                delivery.attempts,
                error,
            )
            await deliveries.finish(
                db, delivery, status="dead", now=now, status_code=status_code, error=error
            )
            return
        delay = backoff(
            delivery.attempts,
            self.settings.outbox_backoff_seconds,
            self.settings.outbox_backoff_max_seconds,
            self.rand(),
        )
        if wait is not None:
            delay = min(
                max(delay, wait), timedelta(seconds=self.settings.outbox_backoff_max_seconds)
            )
        await deliveries.finish(
            db,
            delivery,
            status="pending",
            now=now,
            status_code=status_code,
            error=error,
            retry_at=now + delay,
        )

    async def _post(
        self, outgoing: deliveries.Outgoing, target: ssrf.Destination
    ) -> tuple[int, str | None, timedelta | None]:
        """POST to the checked address only (Host header and TLS name keep the real
        host), without following redirects; reads at most a snippet of the answer."""
        request = ssrf.pinned_request(self.client, "POST", target, outgoing.headers, outgoing.body)
        response = await self.client.send(request, stream=True)
        try:
            snippet = b""
            async for chunk in response.aiter_bytes():
                snippet += chunk
                if len(snippet) >= 300:
                    break
        finally:
            await response.aclose()
        if 200 <= response.status_code < 300:
            return response.status_code, None, None
        text = snippet[:300].decode("utf-8", "replace").strip()
        error = f"HTTP {response.status_code}" + (f": {text}" if text else "")
        if 300 <= response.status_code < 400:
            error += " (redirects are not followed; register the final URL)"
        return response.status_code, error, _retry_after(response, self.clock())

    async def check_campaigns(self) -> int:
        """Emit ``campaign.completed`` once per buy whose flight has ended. Flights are
        judged on the business clock (the simulated one when the server runs on it);
        delivery retries keep the worker's own clock."""
        now = self.business_now()
        db = self.state.db
        async with db.reading() as session:
            rows = await session.exec(self._completion_due, params={"now": now})  # type: ignore[call-overload]
            ids = [media_buy_id for (media_buy_id,) in rows]
        emitted = 0
        for media_buy_id in ids:
            try:
                async with db.transaction() as session:
                    buy = await session.get(MediaBuy, media_buy_id)
                    if (
                        buy is None
                        or buy.state not in RUNNING_STATES
                        or buy.end_time > now
                        or buy.completion_announced_at is not None
                    ):
                        continue
                    await outbox.emit(
                        session,
                        tenant_id=buy.tenant_id,
                        event_type="campaign.completed",
                        payload=await outbox.media_buy_payload(session, buy),
                        principal_id=buy.principal_id,
                        media_buy_id=buy.media_buy_id,
                        dedupe_key=f"campaign.completed:{buy.media_buy_id}",
                    )
                    buy.completion_announced_at = utcnow()
                    session.add(buy)
                emitted += 1
            except IntegrityError:
                # The event exists (another worker, or a server from before migration
                # 0016, emitted it): record that, so the scan stops returning this buy.
                async with db.transaction() as session:
                    await session.exec(
                        update(MediaBuy)
                        .where(
                            col(MediaBuy.media_buy_id) == media_buy_id,
                            col(MediaBuy.completion_announced_at).is_(None),
                        )
                        .values(completion_announced_at=utcnow())
                    )
        return emitted

    async def tick(self) -> int:
        now = self.clock()
        if self._next_campaign_check is None or now >= self._next_campaign_check:
            self._next_campaign_check = now + timedelta(
                seconds=self.settings.campaign_check_seconds
            )
            await self.check_campaigns()
            try:  # work a stopped server left half done (leases and bookings: wall clock)
                await interrupted.sweep(self.state, utcnow())
            except Exception:  # noqa: BLE001 - retried at the next check; delivery goes on
                log.exception("sweeping interrupted work failed; retrying at the next check")
        try:  # the delivery reports due (business clock): one indexed read when none
            await reporting_webhooks.send_due(self.state, self.business_now())
        except Exception:  # noqa: BLE001 - retried at the next poll; delivery goes on
            log.exception("making the delivery reports due failed; retrying")
        try:  # delivery figures governance agents asked for (same: one read when none)
            await governance_delivery.check_due(self.state, self.business_now())
        except Exception:  # noqa: BLE001 - retried at the next poll; delivery goes on
            log.exception("governance delivery checks failed; retrying")
        return await self.run_once()

    async def run(self) -> None:
        while True:
            try:
                busy = await self.tick()
            except Exception:  # noqa: BLE001 - one bad poll (e.g. a locked DB) must not stop delivery
                log.exception("outbox worker poll failed; retrying")
                busy = 0
            if not busy:
                await self.sleep(self.settings.outbox_poll_seconds)

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=f"outbox-{self.worker_id}")
        return self._task

    async def stop(self) -> None:
        """Stop now. A send in flight is abandoned; its lease expires and the delivery is
        retried (by this server after a restart, or by another worker)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.client.aclose()


@contextlib.asynccontextmanager
async def running(state: AppState) -> AsyncIterator[OutboxWorker | None]:
    """The worker for the app lifespan, when ``Settings.outbox_worker`` is on."""
    if not state.settings.outbox_worker:
        yield None
        return
    worker = OutboxWorker(state)
    worker.start()
    try:
        yield worker
    finally:
        await worker.stop()
