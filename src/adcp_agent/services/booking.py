"""Booking a validated media buy (``media_buys.prepare``) through its ad server and
committing it — so nothing is acknowledged that is not both booked and durable, and
nothing is left claiming success when the ad server said no.

A remote ad server is called between two commits: the idempotency claim with the
provisional buy and packages first (a crash during the call leaves a ``provisioning``
buy for ``services.interrupted`` to reconcile, never an order nobody knows about), the
booked state with the recorded answer after. An ad server whose orders are local
(``adapter_protocol.orders_are_local``: the mock) is called inside the booking's one
transaction instead: claim, order, buy, packages and answer commit together or not at
all."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NoReturn

from sqlalchemy import bindparam
from sqlmodel import delete, update

from adcp_agent.adapter_protocol import (
    AdServerAdapter,
    OrderResult,
    OrderSpec,
    order_name,
    orders_are_local,
    orders_survive_power_loss,
)
from adcp_agent.db import statements
from adcp_agent.db.models_accounts import Account
from adcp_agent.db.models_creatives import CreativeAssignment
from adcp_agent.db.models_media import MediaBuy, Package, Task
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import (
    audit,
    avails,
    buy_events,
    governance,
    interrupted,
    media_buys,
    outbox,
    push_notifications,
    reporting_webhooks,
)
from adcp_agent.services import creatives as creative_library
from adcp_agent.services import signals as signal_service
from adcp_agent.services import targeting as targeting_rules
from adcp_agent.services.idempotency import Completion
from adcp_agent.services.identity import Caller, new_id
from adcp_agent.services.media_buys import Booking, CreateRequest, Render, line_spec, snapshot
from adcp_agent.state import AppState

log = logging.getLogger(__name__)

_BUYS = MediaBuy.__table__.c  # type: ignore[attr-defined]
_BOOKED = (
    update(MediaBuy.__table__)  # type: ignore[arg-type]  # Core: no ORM synchronisation
    # Still provisioning: a buy released as stranded meanwhile (interrupted) is gone.
    .where(_BUYS.media_buy_id == bindparam("buy"), _BUYS.state == "provisioning")
    .values(
        external_order_id=bindparam("order"), state=bindparam("state"), updated_at=bindparam("now")
    )
)
_PACKAGES = Package.__table__.c  # type: ignore[attr-defined]
_LINED = (
    update(Package.__table__)  # type: ignore[arg-type]
    .where(_PACKAGES.package_id == bindparam("package"))
    .values(external_line_id=bindparam("line"))
)


async def create(
    state: AppState,
    caller: Caller,
    req: CreateRequest,
    *,
    completion: Completion,
    render: Render,
) -> dict[str, Any]:
    tenant, account, booking = await media_buys.prepare(state, caller, req)
    if governance.governed(account):
        await _governed(state, tenant, account, booking)
    push_config = push_notifications.accept(tenant, req.push_notification_config, state.secrets)
    buy, packages = booking.buy, booking.packages
    channels = {c for p in packages for c in booking.products[p.product_id].channels}
    reporting = reporting_webhooks.accept(
        tenant, req.reporting_webhook, state.secrets, sorted(channels)
    )
    for sid in sorted({s for p in packages for s in targeting_rules.signals_of(p.targeting)}):
        # Targeting an owned signal activates it for this buyer (idempotent).
        await signal_service.activate(
            state.db, caller, sid, [{"type": "agent", "agent_url": state.agent_url}]
        )
    adapter = state.adapters.get(
        tenant, buy.ad_server, account_id=buy.account_id, tool="create_media_buy"
    )
    spec = OrderSpec(
        media_buy_id=buy.media_buy_id,
        name=order_name(account.name, buy.media_buy_id),
        advertiser_name=account.advertiser or account.name,
        advertiser_mapping=booking.advertiser_mapping,
        start=buy.start_time,
        end=buy.end_time,
        total_budget=buy.total_budget,
        currency=buy.currency,
        po_number=buy.po_number,
        lines=tuple(line_spec(p, buy, booking.products[p.product_id]) for p in packages),
    )
    # Read before the transaction, not in it (outbox.emit).
    destinations = await outbox.destinations(state.db, caller.tenant_id)
    outcome = _Outcome(
        state, caller, booking, account, push_config, completion, render, destinations
    )
    outcome.reporting = reporting
    if orders_are_local(adapter):
        response = await outcome.book_in_one_transaction(adapter, spec)
    else:
        response = await outcome.book_around_the_call(adapter, spec)
    if any(booking.creatives.values()):
        await creative_library.push_pending(state, caller.tenant_id, caller.principal_id)
    return response


class _Released(Exception):
    """The provisional buy was released as stranded while the ad server booked it."""


async def _governed(state: AppState, tenant: Any, account: Account, booking: Booking) -> None:
    """The account's governance agent approves the buy as validated (or nothing is
    booked); the buy keeps its context and the approving check."""
    buy = booking.buy
    approval = await governance.check(
        state,
        tenant,
        account,
        plan_id=governance.require_plan(account, buy.plan_id),
        what="this media buy",
        governance_context=buy.governance_context,
        planned=governance.planned_delivery(buy, booking.packages, booking.products),
    )
    approval.keep(buy)


class _Outcome:
    """One booking's commit, the two ways an ad server is called."""

    def __init__(
        self,
        state: AppState,
        caller: Caller,
        booking: Booking,
        account: Account,
        push_config: push_notifications.PushNotificationConfig | None,
        completion: Completion,
        render: Render,
        destinations: Sequence[Any],
    ) -> None:
        self.state, self.caller, self.booking, self.account = state, caller, booking, account
        self.push_config, self.completion, self.render = push_config, completion, render
        self.destinations = destinations
        self.reporting: reporting_webhooks.ReportingWebhookConfig | None = None

    async def book_around_the_call(
        self, adapter: AdServerAdapter, spec: OrderSpec
    ) -> dict[str, Any]:
        state, buy = self.state, self.booking.buy
        # The idempotency claim and the provisional rows, committed before the ad server
        # is called: a crash in between leaves a "provisioning" buy to reconcile, never
        # an order nobody knows about — as durably as the ad server keeps its orders.
        async with state.db.write(durable=orders_survive_power_loss(adapter)) as tx:
            await self.completion.claim(tx, subject=buy.media_buy_id)
            await avails.confirm(tx, self.booking.holds, postgres=not state.db.is_sqlite)
            await statements.insert(tx, buy)
            await statements.insert(tx, *self.booking.packages)
        try:
            result = await _place(adapter, spec, self.booking)
        except Exception as exc:
            await self._refused(exc)
        try:
            return await self._book(result)
        except _Released:
            await interrupted.cancel_late_order(
                state, self.caller, adapter, buy, result.external_order_id
            )
            raise AdcpError(
                "SERVICE_UNAVAILABLE",
                "The ad server took too long to book this media buy and it was released; "
                "nothing was booked. Retry the request.",
                recovery="transient",
                details={"ad_server": buy.ad_server},
            ) from None
        except Exception:
            await interrupted.release_unbooked(state, buy.media_buy_id)
            raise

    async def book_in_one_transaction(
        self, adapter: AdServerAdapter, spec: OrderSpec
    ) -> dict[str, Any]:
        """The ad server's calls take microseconds and touch nothing outside this
        server: holding the write transaction across them costs nothing, and there is
        no provisional state to commit, sweep or update."""
        state, buy, packages = self.state, self.booking.buy, self.booking.packages
        result: OrderResult | None = None
        placing = False
        try:
            async with state.db.write() as tx:
                # First: a concurrent duplicate waits here for this one's commit, then
                # finds the key taken before it calls the ad server.
                await self.completion.claim(tx, subject=buy.media_buy_id)
                await avails.confirm(tx, self.booking.holds, postgres=not state.db.is_sqlite)
                placing = True
                result = await _place(adapter, spec, self.booking)
                placing = False
                _booked(self.booking, result)
                await statements.insert(tx, buy)  # first: the packages' trigger reads it
                async with statements.together(tx):
                    await statements.insert(tx, *packages)
                    return await self._record(tx)
        except Exception as exc:
            if placing:
                await self._refused(exc)
            if result is not None:  # nothing was committed: the order goes too
                await self._withdraw(adapter, result.external_order_id, exc)
            raise

    async def _refused(self, exc: Exception) -> NoReturn:
        """The ad server refused (or failed): remove the provisional rows if any, keep
        the audit trail, tell the buyer."""
        buy = self.booking.buy
        await _abandon(self.state, self.caller, self.booking, exc)
        if isinstance(exc, AdcpError):
            raise exc
        log.error("adapter %s failed creating %s", buy.ad_server, buy.media_buy_id, exc_info=exc)
        raise AdcpError(
            "SERVICE_UNAVAILABLE",
            "The ad server could not book this media buy; nothing was created.",
            recovery="transient",
            details={"ad_server": buy.ad_server},
        ) from exc

    async def _withdraw(self, adapter: AdServerAdapter, order_id: str, exc: Exception) -> None:
        """The booking failed to commit after the ad server took its order: cancel it
        there and record the failure as a refusal's, naming the order."""
        cancelled = await interrupted.try_cancel(adapter, order_id, self.booking.buy.media_buy_id)
        order = {"external_order_id": order_id, "order_cancelled": cancelled}
        await _abandon(self.state, self.caller, self.booking, exc, order=order)

    async def _book(self, result: OrderResult) -> dict[str, Any]:
        """Commit the booked state of the provisional rows, with everything that records
        it; ``_Released`` if they are gone."""
        buy, packages = self.booking.buy, self.booking.packages
        async with self.state.db.write() as tx:
            # The provisional rows as committed above: nothing else can have changed
            # them (a provisioning buy is invisible to every reader and writer but this
            # one, and the sweep of stranded bookings, which removes it), so they are
            # updated as they are, and so are the objects that describe them.
            _booked(self.booking, result)
            booked = {
                "buy": buy.media_buy_id,
                "order": buy.external_order_id,
                "state": buy.state,
                "now": buy.updated_at,
            }
            if await statements.execute(tx, _BOOKED, booked) != 1:
                raise _Released
            lines = [{"package": p.package_id, "line": p.external_line_id} for p in packages]
            async with statements.together(tx):
                await statements.execute(tx, _LINED, lines)
                return await self._record(tx)

    async def _record(self, tx: statements.Tx) -> dict[str, Any]:
        """Everything that records a booked buy (creatives, task, audit row, event, the
        answer), in the transaction that commits it: in a ``together`` block (on
        PostgreSQL its writes go in one round trip with the packages')."""
        caller, booking = self.caller, self.booking
        buy, packages = booking.buy, booking.packages
        # A package created just now has no assignments to replace: only add named ones.
        links = [
            statements.build(
                CreativeAssignment,
                tenant_id=caller.tenant_id,
                creative_pk=c.id or 0,
                package_id=package_id,
            )
            for package_id, assigned in booking.creatives.items()
            for c in assigned
        ]
        await statements.insert(tx, *links)
        if buy.guaranteed:
            booking.task = statements.build(
                Task,
                task_id=new_id("task"),
                tenant_id=caller.tenant_id,
                principal_id=caller.principal_id or "",
                task_type="create_media_buy",
                status="submitted",
                media_buy_id=buy.media_buy_id,
                message=(
                    f"Media buy {buy.media_buy_id} includes guaranteed inventory and awaits the "
                    "publisher's approval (IO sign-off). Poll get_task_status."
                ),
            )
            await statements.insert(tx, booking.task)
        await audit.record(
            tx,
            caller,
            "media_buy.create",
            target_type="media_buy",
            target_id=buy.media_buy_id,
            after=snapshot(buy, packages),
            details={"ad_server": buy.ad_server, "account_id": self.account.account_id},
            revision=buy.revision,
        )
        await buy_events.booked(
            tx, buy, packages, booking.task, self.push_config, self.destinations
        )
        if self.reporting is not None:
            now = self.state.clock.now()
            await reporting_webhooks.save(tx, buy, self.reporting, now, new=True)
        response = self.render(booking)
        await self.completion.mark(tx, response)
        return response


async def _place(adapter: AdServerAdapter, spec: OrderSpec, booking: Booking) -> OrderResult:
    """The order, started at once unless it awaits the publisher's approval — and
    paused right after (the order, or the lines of some packages) when the buyer asked
    for that."""
    result = await adapter.create_order(spec)
    if not booking.buy.guaranteed:
        await adapter.order_action(result.external_order_id, "activate")
        if booking.paused:
            await adapter.order_action(result.external_order_id, "pause")
        for package in booking.packages:  # packages asked to be booked paused
            line = result.external_line_ids.get(package.package_id)
            if package.paused and line:
                await adapter.line_action(result.external_order_id, line, "pause")
    return result


def _booked(booking: Booking, result: OrderResult) -> None:
    buy, packages = booking.buy, booking.packages
    buy.external_order_id = result.external_order_id
    if buy.guaranteed:
        buy.state = "pending_approval"
    else:
        buy.state = "paused" if booking.paused else "live"
    buy.updated_at = utcnow()
    for package in packages:
        package.external_line_id = result.external_line_ids.get(package.package_id)


async def _abandon(
    state: AppState,
    caller: Caller,
    booking: Booking,
    exc: Exception,
    *,
    order: dict[str, Any] | None = None,
) -> None:
    """The ad server refused: remove the provisional rows (if any were committed), keep
    the audit trail."""
    buy = booking.buy
    async with state.db.transaction() as session:
        await buy_events.failed(session, buy, exc, booking.packages)
        await session.exec(delete(Package).where(Package.media_buy_id == buy.media_buy_id))
        await session.exec(delete(MediaBuy).where(MediaBuy.media_buy_id == buy.media_buy_id))
        await audit.record(
            session,
            caller,
            "media_buy.create_failed",
            target_type="media_buy",
            target_id=buy.media_buy_id,
            success=False,
            details={
                "ad_server": buy.ad_server,
                "error": exc.to_adcp() if isinstance(exc, AdcpError) else type(exc).__name__,
                **(order or {}),
            },
        )
