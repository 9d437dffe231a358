"""A publisher's webhook endpoints (tenant-management API): list, create, delete.

The signing secret is generated (or taken from the request, as seed 001 allows), shown
once in the create response and never again; lists show a hint. Deleting is soft, so
the delivery history that points at an endpoint stays readable.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import col, select

from adcp_agent.db.engine import Database
from adcp_agent.db.models_events import WebhookEndpoint
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.sealing import SecretBox
from adcp_agent.services import audit, ssrf, tenant_admin
from adcp_agent.services.identity import new_id
from adcp_agent.services.outbox import EVENT_TYPES

SECRET_PREFIX = "whsec_"
MAX_ENDPOINTS = 20


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(min_length=1, max_length=2048)
    name: str = Field(default="", max_length=200)
    events: list[str] = Field(
        default_factory=list, description="Event types to receive; empty means all."
    )
    secret: str | None = Field(
        default=None, min_length=16, max_length=200, description="Random if omitted."
    )

    @field_validator("events")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(
                f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
            )
        return sorted(set(value))


@dataclass(frozen=True)
class CreatedWebhook:
    endpoint: WebhookEndpoint
    secret: str


def _hint(secret: str) -> str:
    return secret[:10] if secret.startswith(SECRET_PREFIX) else secret[:4]


async def list_webhooks(db: Database, tenant_id: str) -> list[WebhookEndpoint]:
    await tenant_admin.require_tenant(db, tenant_id)
    async with db.reading() as session:
        rows = await session.exec(
            select(WebhookEndpoint)
            .where(
                WebhookEndpoint.tenant_id == tenant_id,
                col(WebhookEndpoint.deleted_at).is_(None),
            )
            .order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.webhook_id))
        )
        return list(rows.all())


async def create_webhook(
    db: Database, box: SecretBox, tenant_id: str, body: WebhookCreate
) -> CreatedWebhook:
    tenant = await tenant_admin.require_tenant(db, tenant_id)
    ssrf.check_registration(body.url, ssrf.Allowance.from_features(tenant.features))
    if len(await list_webhooks(db, tenant_id)) >= MAX_ENDPOINTS:
        raise AdcpError(
            "CONFLICT",
            f"A tenant can have at most {MAX_ENDPOINTS} webhooks; delete one first.",
            field="url",
        )
    secret = body.secret or SECRET_PREFIX + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(
        webhook_id=new_id("wh"),
        tenant_id=tenant_id,
        name=body.name,
        url=body.url,
        secret=box.seal(secret),
        secret_hint=_hint(secret),
        events=body.events,
    )
    async with db.transaction() as session:
        session.add(endpoint)
        await audit.record(
            session,
            None,
            "webhook.create",
            actor=tenant_admin.ACTOR,
            tenant_id=tenant_id,
            target_type="webhook",
            target_id=endpoint.webhook_id,
            after={"url": body.url, "events": body.events, "secret_hint": endpoint.secret_hint},
        )
    return CreatedWebhook(endpoint, secret)


async def delete_webhook(db: Database, tenant_id: str, webhook_id: str) -> WebhookEndpoint:
    """Deliveries still due to it are dead-lettered by the worker ("endpoint deleted")."""
    await tenant_admin.require_tenant(db, tenant_id)
    async with db.transaction() as session:
        endpoint = await session.get(WebhookEndpoint, webhook_id)
        if endpoint is None or endpoint.tenant_id != tenant_id or endpoint.deleted_at:
            raise AdcpError(
                "NOT_FOUND", f"Webhook '{webhook_id}' was not found.", field="webhook_id"
            )
        endpoint.deleted_at = utcnow()
        session.add(endpoint)
        await audit.record(
            session,
            None,
            "webhook.delete",
            actor=tenant_admin.ACTOR,
            tenant_id=tenant_id,
            target_type="webhook",
            target_id=webhook_id,
        )
    return endpoint
