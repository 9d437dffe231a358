"""Tenant-management endpoints for notifications: a tenant's webhook endpoints, and the
outbox (events with their deliveries; re-queue a dead letter)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from adcp_agent.db.models_events import EventDelivery, OutboxEvent, WebhookEndpoint
from adcp_agent.rest.admin_http import admin_route, ok, read_body, read_query
from adcp_agent.services import events_admin, webhooks
from adcp_agent.services.events_admin import EventQuery
from adcp_agent.services.webhook_signing import SIGNATURE_HEADER
from adcp_agent.state import AppState


class WebhookView(BaseModel):
    webhook_id: str
    tenant_id: str
    name: str
    url: str
    events: list[str]
    secret_hint: str
    created_at: datetime

    @classmethod
    def of(cls, e: WebhookEndpoint) -> WebhookView:
        return cls(**e.model_dump(include=set(cls.model_fields)))


class WebhookCreated(WebhookView):
    secret: str
    signature_header: str = SIGNATURE_HEADER
    message: str = "Save this secret now: the API never shows it again (it signs every delivery)."


class WebhookList(BaseModel):
    webhooks: list[WebhookView]


def _where(url: str) -> str:
    """Deliveries show only scheme and host: Slack and push URLs are capabilities."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


class DeliveryView(BaseModel):
    delivery_id: str
    channel: str
    target_id: str | None
    destination: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, d: EventDelivery) -> DeliveryView:
        data = d.model_dump(include=set(cls.model_fields) - {"destination", "next_attempt_at"})
        due = d.next_attempt_at if d.status == "pending" else None
        return cls(**data, destination=_where(d.url), next_attempt_at=due)


class EventView(BaseModel):
    event_id: str
    tenant_id: str
    event_type: str
    status: str
    principal_id: str | None
    media_buy_id: str | None
    payload: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    deliveries: list[DeliveryView]

    @classmethod
    def of(cls, e: OutboxEvent, deliveries: list[EventDelivery]) -> EventView:
        data = e.model_dump(include=set(cls.model_fields) - {"deliveries"})
        return cls(**data, deliveries=[DeliveryView.of(d) for d in deliveries])


class EventPage(BaseModel):
    events: list[EventView]
    next_cursor: str | None
    has_more: bool


class _NoBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


def event_routes(state: AppState) -> list[BaseRoute]:
    db = state.db

    async def list_webhooks(request: Request) -> Response:
        rows = await webhooks.list_webhooks(db, request.path_params["tenant_id"])
        return ok(WebhookList(webhooks=[WebhookView.of(w) for w in rows]))

    async def create_webhook(request: Request) -> Response:
        body = await read_body(request, webhooks.WebhookCreate)
        tenant_id = request.path_params["tenant_id"]
        created = await webhooks.create_webhook(db, state.secrets, tenant_id, body)
        view = WebhookView.of(created.endpoint)
        return ok(WebhookCreated(**view.model_dump(), secret=created.secret), 201)

    async def delete_webhook(request: Request) -> Response:
        tenant_id, webhook_id = request.path_params["tenant_id"], request.path_params["wid"]
        return ok(WebhookView.of(await webhooks.delete_webhook(db, tenant_id, webhook_id)))

    async def list_events(request: Request) -> Response:
        page, deliveries = await events_admin.list_events(db, read_query(request, EventQuery))
        return ok(
            EventPage(
                events=[EventView.of(e, deliveries.get(e.event_id, [])) for e in page.items],
                next_cursor=page.next_cursor,
                has_more=page.has_more,
            )
        )

    async def get_event(request: Request) -> Response:
        return ok(EventView.of(*await events_admin.get_event(db, request.path_params["eid"])))

    async def retry_event(request: Request) -> Response:
        await read_body(request, _NoBody)
        return ok(EventView.of(*await events_admin.retry_event(db, request.path_params["eid"])))

    hooks = "/tenants/{tenant_id}/webhooks"
    return [
        admin_route(hooks, state, {"GET": list_webhooks, "POST": create_webhook}),
        admin_route(hooks + "/{wid}", state, {"DELETE": delete_webhook}),
        admin_route("/events", state, {"GET": list_events}),
        admin_route("/events/{eid}", state, {"GET": get_event}),
        admin_route("/events/{eid}/retry", state, {"POST": retry_event}),
    ]
