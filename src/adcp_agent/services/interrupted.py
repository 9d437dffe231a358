"""Work a stopped server left half done, put right once it has clearly stopped.

* **Bookings.** create_media_buy commits its buy as ``provisioning`` (invisible to
  buyers, but holding its inventory) before it calls the ad server, and marks it booked
  after. A server stopped in between left that buy holding inventory for good. Once it
  is ``STRANDED_AFTER`` old — far longer than any ad-server call may take — the order
  its booking may have made is cancelled at the ad server (where the adapter can find
  it: ``find_order``; else the audit row tells ad ops what to look for), its rows go,
  and the buyer's webhook gets ``media_buy.failed``. Sooner, where it is known to be
  over: the buyer's retry with the same idempotency key retakes the stale claim
  (``idempotency.STALE_AFTER``), which names the buy, and releases that buy the same
  way before booking afresh (``release_retaken``) — never beside it while it still
  holds inventory; a booking whose booked state failed to commit releases its own
  (``release_now``). A booking that does come back later finds its buy gone and
  cancels the order it made (``booking.create``).
* **Updates.** update_media_buy reserves a larger goal, a later end or a resubmitted
  state before it calls the ad server, under the buy's lease, and records what each
  replaced (``update_lease_undo``). A lease that lapsed (``media_updates.LEASE``) was
  left by an update that never finished and was never acknowledged: what it reserved
  is put back where nobody has changed it since, the lines it was adding are paused at
  the ad server where the adapter can find them (``find_line``), and the lease is
  freed — by the next update of the buy, or by the outbox worker's sweep, whichever
  comes first.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete
from sqlalchemy import update as sa_update
from sqlmodel import col, select

from adcp_agent.adapter_protocol import AdServerAdapter, line_finder, order_finder, order_name
from adcp_agent.db import statements
from adcp_agent.db.models import Tenant
from adcp_agent.db.models_accounts import Account
from adcp_agent.db.models_media import MediaBuy, Package
from adcp_agent.errors import AdcpError
from adcp_agent.services import approvals, audit, buy_events
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState

log = logging.getLogger(__name__)

# A provisioning buy this old was left by a server that stopped while booking it: every
# ad-server call has timed out long before.
STRANDED_AFTER = timedelta(minutes=10)
BATCH = 100

STRANDED = AdcpError(
    "SERVICE_UNAVAILABLE",
    "The server stopped while booking this media buy; it was not booked. Retry the request.",
    recovery="transient",
)
# What the buyer's media_buy.failed event says, by what released the buy.
RELEASED = {
    "sweep": STRANDED,
    "retry": AdcpError(
        "SERVICE_UNAVAILABLE",
        "The server stopped while booking this media buy; it was not booked, and the "
        "retry with the same idempotency key books it afresh.",
        recovery="transient",
    ),
    "failed": AdcpError(
        "SERVICE_UNAVAILABLE",
        "This media buy could not be recorded as booked; it was not booked. Retry the request.",
        recovery="transient",
    ),
}

_STRANDED = (
    select(MediaBuy.media_buy_id)
    .where(col(MediaBuy.state) == "provisioning", col(MediaBuy.created_at) < bindparam("cutoff"))
    .limit(BATCH)
)
# Read through ix_media_buys_leased (its condition is spelled the same).
_LAPSED = (
    select(MediaBuy.media_buy_id)
    .where(
        col(MediaBuy.update_lease).is_not(None), col(MediaBuy.update_lease_until) < bindparam("now")
    )
    .limit(BATCH)
)
_FREE_LEASE = (
    sa_update(MediaBuy)
    .where(
        col(MediaBuy.media_buy_id) == bindparam("buy"),
        col(MediaBuy.update_lease) == bindparam("token"),
        col(MediaBuy.update_lease_until) < bindparam("now"),
    )
    .values(update_lease=None, update_lease_until=None, update_lease_undo=None)
)


def encode(value: Any) -> Any:
    """A value of a buy field as the undo record keeps it (JSON)."""
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def _decode(name: str, value: Any) -> Any:
    flight = name in ("start_time", "end_time")
    return datetime.fromisoformat(value) if flight and value is not None else value


class _Gone(Exception):
    """Another server, or the work itself, settled it first: roll back, count nothing."""


async def sweep(state: AppState, now: datetime) -> tuple[int, int]:
    """Release every stranded booking and lapsed lease (``now`` on the wall clock, as
    leases and ``created_at`` are); how many of each. A booking whose ad server cannot
    be reached now is left for the next sweep. Approval decisions left unfinished go
    back to the queue too (``approvals.release_stale_decisions``)."""
    db = state.db
    stranded = [r.media_buy_id for r in await db.read(_STRANDED, {"cutoff": now - STRANDED_AFTER})]
    lapsed = [r.media_buy_id for r in await db.read(_LAPSED, {"now": now})]
    bookings = 0
    for media_buy_id in stranded:
        try:
            bookings += await release_booking(state, media_buy_id, now)
        except Exception:  # noqa: BLE001 - the ad server, most likely: next sweep
            log.exception("could not release stranded media buy %s yet", media_buy_id)
    leases = sum([await release_lease(state, media_buy_id, now) for media_buy_id in lapsed])
    await approvals.release_stale_decisions(state, now)
    return bookings, leases


def _stranded(buy: MediaBuy | None, now: datetime, older_than: timedelta) -> bool:
    return buy is not None and buy.state == "provisioning" and buy.created_at < now - older_than


async def _cancel_order(state: AppState, buy: MediaBuy) -> dict[str, Any]:
    """Cancel the order the interrupted booking may have made, where the adapter can
    find it; what to tell ad ops."""
    async with state.db.reading() as session:
        tenant = await session.get(Tenant, buy.tenant_id)
        account = await session.get(Account, buy.account_id)
    assert tenant is not None and account is not None
    name = order_name(account.name, buy.media_buy_id)
    adapter = state.adapters.get(tenant, buy.ad_server)
    find = order_finder(adapter)
    if find is None:
        return {
            "external_order_id": None,
            "note": (
                "The ad server may hold an order for this buy that nobody tracks, "
                f"named '{name}' or carrying the media buy id: archive it there."
            ),
        }
    order_id = await find(buy.media_buy_id, name)
    if order_id is None:
        return {"external_order_id": None, "note": "The ad server holds no order for it."}
    await adapter.order_action(order_id, "cancel")
    return {"external_order_id": order_id, "note": f"Its order {order_id} was cancelled."}


async def release_now(state: AppState, media_buy_id: str, cause: str) -> bool:
    """``release_booking`` at any age, for a booking known to be over (``cause`` goes
    in the audit row)."""
    return await release_booking(
        state, media_buy_id, datetime.now(UTC), older_than=timedelta(0), cause=cause
    )


async def release_retaken(state: AppState, media_buy_id: str) -> None:
    """A retry retakes the stale claim of an attempt that never answered: release the
    buy that attempt provisioned first. An ad server that cannot be asked to cancel its
    order now is SERVICE_UNAVAILABLE: the claim stays, and so does the buy (for the
    next retry, or the sweep)."""
    try:
        await release_now(state, media_buy_id, "retry")
    except Exception as exc:
        log.exception("could not release media buy %s for a retry", media_buy_id)
        raise AdcpError(
            "SERVICE_UNAVAILABLE",
            "An earlier attempt with this idempotency key was interrupted, and the order "
            "it may have made cannot be cancelled yet. Retry shortly with the same key.",
            field="idempotency_key",
            recovery="transient",
        ) from exc


async def release_unbooked(state: AppState, media_buy_id: str) -> None:
    """A booking's booked state failed to commit and its buyer is told so: release its
    provisional buy (the order cancelled first) now, not at the next sweep, so a retry
    books beside nothing. Nothing, if it did commit after all; the sweep's, if this
    fails too."""
    try:
        await release_now(state, media_buy_id, "failed")
    except Exception:  # noqa: BLE001 - the booking's own failure is the answer
        log.exception("could not release unbooked media buy %s yet", media_buy_id)


async def try_cancel(adapter: AdServerAdapter, order_id: str, media_buy_id: str) -> bool:
    """Cancel an order no buy will keep; whether the ad server took it (a failure is
    logged and reported by the caller for ad ops; the buyer's answer stands)."""
    try:
        await adapter.order_action(order_id, "cancel")
    except Exception:  # noqa: BLE001 - see above
        log.exception("could not cancel order %s of media buy %s", order_id, media_buy_id)
        return False
    return True


async def cancel_late_order(
    state: AppState, caller: Caller, adapter: AdServerAdapter, buy: MediaBuy, order_id: str
) -> None:
    """Cancel the order a booking made after its buy was released, and tell ad ops
    (audit) how it went."""
    cancelled = await try_cancel(adapter, order_id, buy.media_buy_id)
    async with state.db.transaction() as session:
        await audit.record(
            session,
            caller,
            "media_buy.late_order_cancelled",
            target_type="media_buy",
            target_id=buy.media_buy_id,
            success=cancelled,
            details={"ad_server": buy.ad_server, "external_order_id": order_id},
        )


async def release_booking(
    state: AppState,
    media_buy_id: str,
    now: datetime,
    *,
    older_than: timedelta = STRANDED_AFTER,
    cause: str = "sweep",
) -> bool:
    """Remove a stranded provisioning buy, cancelling first the order its booking made
    at the ad server if the adapter can find it; False if it is not one (booked
    meanwhile, released by another server, or not ``older_than`` old)."""
    async with state.db.reading() as session:
        buy = await session.get(MediaBuy, media_buy_id)
    if not _stranded(buy, now, older_than):
        return False
    assert buy is not None
    order = await _cancel_order(state, buy)
    try:
        async with state.db.transaction() as session:
            stored = await session.get(MediaBuy, media_buy_id)
            if not _stranded(stored, now, older_than):
                raise _Gone
            assert stored is not None
            await buy_events.failed(session, stored, RELEASED.get(cause, STRANDED))
            await audit.record(
                session,
                None,
                "media_buy.create_interrupted",
                tenant_id=stored.tenant_id,
                target_type="media_buy",
                target_id=media_buy_id,
                success=False,
                details={"ad_server": stored.ad_server, "released_by": cause, **order},
            )
            await session.exec(delete(Package).where(col(Package.media_buy_id) == media_buy_id))
            gone = await session.exec(
                delete(MediaBuy).where(
                    col(MediaBuy.media_buy_id) == media_buy_id,
                    col(MediaBuy.state) == "provisioning",
                )
            )
            if gone.rowcount != 1:  # booked while this ran (PostgreSQL)
                raise _Gone
    except _Gone:
        return False
    log.warning("released media buy %s: its booking was interrupted (%s)", media_buy_id, cause)
    return True


async def _pause_added_lines(state: AppState, media_buy_id: str, now: datetime) -> dict[str, Any]:
    """The lines a lapsed update was adding, paused at the ad server where it made them
    (it never recorded them: nothing tracks what they would spend); what to tell ad ops.
    Raises if the ad server cannot be asked now: the lease then waits for the next try."""
    async with state.db.reading() as session:
        buy = await session.get(MediaBuy, media_buy_id)
        if buy is None or buy.update_lease_until is None or buy.update_lease_until >= now:
            return {}
        lines = list((buy.update_lease_undo or {}).get("lines", []))
        if not lines or not buy.external_order_id:
            return {}
        tenant = await session.get(Tenant, buy.tenant_id)
    assert tenant is not None
    adapter = state.adapters.get(tenant, buy.ad_server)
    find = line_finder(adapter)
    if find is None:
        return {
            "lines_to_check": lines,
            "note": f"Order {buy.external_order_id} may hold lines for packages "
            f"{', '.join(lines)} that no buy records: archive them there.",
        }
    paused: dict[str, str] = {}
    for package_id in lines:
        line_id = await find(buy.external_order_id, package_id)
        if line_id is not None:
            await adapter.line_action(buy.external_order_id, line_id, "pause")
            paused[package_id] = line_id
    return {"lines_paused": paused} if paused else {}


async def release_lease(state: AppState, media_buy_id: str, now: datetime) -> bool:
    """Undo what a lapsed update lease reserved ahead (each value only while it is
    still what the update put there), pause the lines it was adding at the ad server,
    and free the lease; False if it is not lapsed (or the ad server cannot be asked
    now: the next try does it)."""
    try:
        lines = await _pause_added_lines(state, media_buy_id, now)
    except Exception:  # noqa: BLE001 - the ad server, most likely: next sweep or update
        log.exception("could not pause the lines of media buy %s's lapsed update", media_buy_id)
        return False
    try:
        async with state.db.transaction() as session:
            stored = await session.get(MediaBuy, media_buy_id)
            if stored is None or stored.update_lease is None:
                raise _Gone
            params = {"buy": media_buy_id, "token": stored.update_lease, "now": now}
            if await statements.execute(session, _FREE_LEASE, params) != 1:
                raise _Gone  # still running, or freed by another server first
            undo: dict[str, Any] = stored.update_lease_undo or {}
            restored: dict[str, Any] = {}
            for name, (before, ahead) in undo.get("buy", {}).items():
                if encode(getattr(stored, name)) == ahead:
                    setattr(stored, name, _decode(name, before))
                    restored[name] = before
            stored.update_lease = stored.update_lease_until = stored.update_lease_undo = None
            session.add(stored)
            for package_id, (before, ahead) in undo.get("goals", {}).items():
                row = await session.get(Package, package_id)
                if row is not None and row.impressions_goal == ahead:
                    row.impressions_goal = before
                    session.add(row)
                    restored[f"{package_id}.impressions_goal"] = before
            for package_id in undo.get("added", []):
                # A guaranteed package the update added ahead of the ad server: gone
                # with the update (a line the ad server may have added is not booked).
                row = await session.get(Package, package_id)
                if row is not None and row.external_line_id is None:
                    await session.delete(row)
                    restored[f"{package_id}"] = "removed"
            await audit.record(
                session,
                None,
                "media_buy.update_interrupted",
                tenant_id=stored.tenant_id,
                target_type="media_buy",
                target_id=media_buy_id,
                success=False,
                details={"restored": restored, "revision": stored.revision, **lines},
            )
    except _Gone:
        return False
    log.warning("released the lapsed update lease of media buy %s", media_buy_id)
    return True
