"""Seed-002 notification APIs: what channels are on, email drafts of media-buy events,
and sending a draft by email (once).

Who may see a draft: the installation admin (admin API key) sees all; a principal with
role ``admin`` sees its tenant's; a buyer sees the drafts about its own buys only —
another buyer's draft answers 404 exactly like one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from adcp_agent.db.models import Principal, Tenant
from adcp_agent.db.models_events import NotificationDraft, OutboxEvent, WebhookEndpoint
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import audit, email_sender, notification_text
from adcp_agent.services.outbox import EVENT_TYPES, SLACK_FEATURE
from adcp_agent.services.webhook_signing import SIGNATURE_HEADER
from adcp_agent.state import AppState

RECIPIENTS_FEATURE = "notification_emails"
STALE_SENDING = timedelta(minutes=10)  # a send that crashed mid-way may be retried after


@dataclass(frozen=True)
class Viewer:
    tenant_id: str | None  # None: the installation admin
    principal_id: str | None = None
    tenant_admin: bool = False

    @property
    def actor(self) -> str:
        return f"principal:{self.principal_id}" if self.principal_id else "admin:api"


@dataclass(frozen=True)
class RenderedDraft:
    draft: NotificationDraft
    subject: str
    body: str
    recipients: list[str]


def recipients(tenant: Tenant) -> list[str]:
    value = tenant.features.get(RECIPIENTS_FEATURE)
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return [str(v).strip() for v in items if "@" in str(v)]


async def _tenant(state: AppState, viewer: Viewer, tenant_id: str | None) -> Tenant:
    wanted = viewer.tenant_id or tenant_id
    if not wanted:
        raise AdcpError("INVALID_REQUEST", "Name the tenant: ?tenant_id=...", field="tenant_id")
    async with state.db.reading() as session:
        tenant = await session.get(Tenant, wanted)
    if tenant is None or tenant.deleted_at is not None:
        raise AdcpError("NOT_FOUND", f"Tenant '{wanted}' was not found.", field="tenant_id")
    return tenant


async def config(state: AppState, viewer: Viewer, tenant_id: str | None) -> dict[str, Any]:
    tenant = await _tenant(state, viewer, tenant_id)
    async with state.db.reading() as session:
        webhooks = (
            await session.exec(
                select(func.count())
                .select_from(WebhookEndpoint)
                .where(
                    WebhookEndpoint.tenant_id == tenant.tenant_id,
                    col(WebhookEndpoint.deleted_at).is_(None),
                )
            )
        ).one()
    to = recipients(tenant)
    return {
        "tenantId": tenant.tenant_id,
        "email": {
            "enabled": email_sender.enabled(state.settings) and bool(to),
            "smtpConfigured": email_sender.enabled(state.settings),
            "from": state.settings.smtp_from,
            "recipientCount": len(to),
        },
        "slack": {"enabled": bool(tenant.features.get(SLACK_FEATURE))},
        "webhooks": {"count": int(webhooks), "signatureHeader": SIGNATURE_HEADER},
        "pushNotifications": {"supported": True, "schemes": ["Bearer", "HMAC-SHA256"]},
        "eventTypes": list(EVENT_TYPES),
    }


def _visible(stmt: SelectOfScalar[NotificationDraft], viewer: Viewer) -> Any:
    if viewer.tenant_id is not None:
        stmt = stmt.where(NotificationDraft.tenant_id == viewer.tenant_id)
        if not viewer.tenant_admin:
            stmt = stmt.where(NotificationDraft.principal_id == viewer.principal_id)
    return stmt


async def _render(state: AppState, draft: NotificationDraft) -> RenderedDraft:
    async with state.db.reading() as session:
        event = await session.get(OutboxEvent, draft.event_id)
        tenant = await session.get(Tenant, draft.tenant_id)
        principal = await session.get(Principal, draft.principal_id) if draft.principal_id else None
    assert event is not None and tenant is not None
    summary = notification_text.summarize(
        event.event_type,
        event.payload,
        tenant_name=tenant.name,
        principal_name=principal.name if principal else None,
        base_url=state.settings.base_url(),
    )
    subject, body = notification_text.email(summary, event.event_id)
    return RenderedDraft(draft, subject, body, draft.sent_to or recipients(tenant))


async def get_draft(state: AppState, viewer: Viewer, ident: str) -> RenderedDraft:
    """A draft by id, or (seed fallback) the latest draft of a media buy id."""
    if not ident.startswith("draft_"):
        return await latest_for_media_buy(state, viewer, ident)
    stmt = _visible(select(NotificationDraft).where(NotificationDraft.draft_id == ident), viewer)
    async with state.db.reading() as session:
        draft = (await session.exec(stmt)).first()
    if draft is None:
        raise AdcpError("NOT_FOUND", f"Draft '{ident}' was not found.", field="id")
    return await _render(state, draft)


async def latest_for_media_buy(state: AppState, viewer: Viewer, media_buy_id: str) -> RenderedDraft:
    stmt = _visible(
        select(NotificationDraft)
        .where(NotificationDraft.media_buy_id == media_buy_id)
        .order_by(col(NotificationDraft.created_at).desc(), col(NotificationDraft.draft_id).desc()),
        viewer,
    )
    async with state.db.reading() as session:
        draft = (await session.exec(stmt)).first()
    if draft is None:
        raise AdcpError(
            "NOT_FOUND",
            f"No notification draft exists for media buy '{media_buy_id}'.",
            field="mediaBuyId",
        )
    return await _render(state, draft)


async def send_email(state: AppState, viewer: Viewer, draft_id: str) -> RenderedDraft:
    """Send the draft to the tenant's ``features.notification_emails``. The draft is
    claimed first (draft → sending), so two concurrent sends cannot both mail it."""
    rendered = await get_draft(state, viewer, draft_id)
    draft = rendered.draft
    if draft.status == "sent":
        raise _already_sent(draft)
    email_sender.require_enabled(state.settings)
    if not rendered.recipients:
        raise AdcpError(
            "INVALID_STATE",
            "The publisher has no notification recipients configured.",
            suggestion=f"Set features.{RECIPIENTS_FEATURE} on the tenant.",
            http_status=400,
        )
    now = utcnow()
    async with state.db.transaction() as session:
        claimed = await session.exec(
            update(NotificationDraft)
            .where(
                col(NotificationDraft.draft_id) == draft.draft_id,
                or_(
                    col(NotificationDraft.status) == "draft",
                    (col(NotificationDraft.status) == "sending")
                    & (col(NotificationDraft.updated_at) < now - STALE_SENDING),
                ),
            )
            .values(status="sending", updated_at=now)
        )
    if claimed.rowcount == 0:  # type: ignore[attr-defined]
        raise _already_sent(draft)
    try:
        email_id = await email_sender.send(
            state.settings, to=rendered.recipients, subject=rendered.subject, body=rendered.body
        )
    except AdcpError:
        async with state.db.transaction() as session:
            row = await session.get(NotificationDraft, draft.draft_id)
            assert row is not None
            row.status, row.updated_at = "draft", utcnow()
            session.add(row)
        raise
    async with state.db.transaction() as session:
        row = await session.get(NotificationDraft, draft.draft_id)
        assert row is not None
        row.status, row.email_id, row.sent_to = "sent", email_id, rendered.recipients
        row.sent_at = row.updated_at = utcnow()
        session.add(row)
        await audit.record(
            session,
            None,
            "notification.email_sent",
            actor=viewer.actor,
            tenant_id=row.tenant_id,
            target_type="notification_draft",
            target_id=row.draft_id,
            details={"email_id": email_id, "recipients": len(rendered.recipients)},
        )
    return RenderedDraft(row, rendered.subject, rendered.body, rendered.recipients)


def _already_sent(draft: NotificationDraft) -> AdcpError:
    return AdcpError(
        "INVALID_STATE",
        f"Draft '{draft.draft_id}' was already sent (or is being sent).",
        field="draftId",
        details={"emailId": draft.email_id} if draft.email_id else None,
        http_status=400,
    )
