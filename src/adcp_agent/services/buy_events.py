"""The media-buy lifecycle's events, one call per transition. Each runs inside the
transaction that makes the transition (so the event commits or rolls back with it) and
keeps the lifecycle services free of notification details."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adcp_agent.db.models_accounts import Account
from adcp_agent.db.models_media import MediaBuy, Package, Task
from adcp_agent.db.statements import Tx
from adcp_agent.errors import AdcpError
from adcp_agent.services import outbox, push_notifications
from adcp_agent.services.push_notifications import PushNotificationConfig


async def _emit(
    session: Tx,
    buy: MediaBuy,
    event_type: str,
    data: dict[str, Any],
    destinations: Sequence[Any] | None = None,
) -> None:
    await outbox.emit(
        session,
        tenant_id=buy.tenant_id,
        event_type=event_type,
        payload=data,
        principal_id=buy.principal_id,
        media_buy_id=buy.media_buy_id,
        destinations=destinations,
    )


async def _register(
    session: Tx,
    buy: MediaBuy,
    task_type: str,
    task: Task | None,
    config: PushNotificationConfig | None,
) -> None:
    if config is not None:
        await push_notifications.save(
            session,
            tenant_id=buy.tenant_id,
            principal_id=buy.principal_id,
            media_buy_id=buy.media_buy_id,
            task_type=task_type,
            task_id=task.task_id if task else None,
            config=config,
        )


async def booked(
    session: Tx,
    buy: MediaBuy,
    packages: Sequence[Package],
    task: Task | None,
    push_config: PushNotificationConfig | None,
    destinations: Sequence[Any] | None = None,
) -> None:
    """create_media_buy committed: live at once, or awaiting the publisher's approval
    (``destinations``: see ``outbox.emit``)."""
    await _register(session, buy, "create_media_buy", task, push_config)
    data = await outbox.media_buy_payload(
        session, buy, packages, task_id=task.task_id if task else None
    )
    kind = "media_buy.approval_required" if task is not None else "media_buy.created"
    if task is not None:
        data["approval_reason"] = "Guaranteed inventory needs the publisher's IO sign-off."
    await _emit(session, buy, kind, data, destinations)


async def failed(
    session: Tx, buy: MediaBuy, exc: Exception, packages: Sequence[Package] | None = None
) -> None:
    """The ad server refused the booking. The payload lists the packages: ``packages``,
    or the provisional rows (call before they are deleted)."""
    error = (
        exc.to_adcp()
        if isinstance(exc, AdcpError)
        else {
            "code": "SERVICE_UNAVAILABLE",
            "message": f"The ad server failed ({type(exc).__name__}).",
        }
    )
    data = await outbox.media_buy_payload(session, buy, packages, state="failed", error=error)
    data.pop("media_buy_status", None)
    await _emit(session, buy, "media_buy.failed", data)


async def decided(
    session: Tx, buy: MediaBuy, task: Task, *, approve: bool, reason: str | None
) -> None:
    """The publisher approved or rejected a buy awaiting approval."""
    data = await outbox.media_buy_payload(
        session, buy, task_id=task.task_id, decided_by=task.decided_by
    )
    if not approve:
        data["reason"] = reason or "no reason given"
    await _emit(session, buy, "media_buy.approved" if approve else "media_buy.rejected", data)


async def updated(
    session: Tx,
    buy: MediaBuy,
    packages: Sequence[Package],
    *,
    state_before: str,
    task: Task | None,
    push_config: PushNotificationConfig | None,
) -> None:
    """update_media_buy committed: a paused buy running again is ``media_buy.activated``;
    a rejected buy resubmitted is ``media_buy.approval_required`` again."""
    await _register(session, buy, "update_media_buy", task, push_config)
    if state_before == "paused" and buy.state == "live":
        await _emit(
            session,
            buy,
            "media_buy.activated",
            await outbox.media_buy_payload(session, buy, packages),
        )
    elif task is not None and buy.state == "pending_approval":
        data = await outbox.media_buy_payload(session, buy, packages, task_id=task.task_id)
        data["approval_reason"] = "The buyer resubmitted the order for approval."
        await _emit(session, buy, "media_buy.approval_required", data)


async def account_awaits_approval(session: Tx, account: Account, principal_id: str) -> None:
    """``config_approval_required``: the tenant's configuration (``features.account_approval:
    manual``), not the request, holds a new billing account for the publisher's review."""
    await outbox.emit(
        session,
        tenant_id=account.tenant_id,
        event_type="config_approval_required",
        payload={
            "account_id": account.account_id,
            "account_name": account.name,
            "brand_domain": account.brand_domain,
            "operator": account.operator,
            "principal_id": principal_id,
            "approval_reason": "The publisher reviews new accounts (features.account_approval).",
        },
        principal_id=principal_id,
    )
