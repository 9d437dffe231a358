"""Seed-002 notification APIs under ``/api/notifications``: channel config, email drafts
of media-buy events, and sending a draft by email.

Auth: a buyer token exactly as MCP takes it (``Authorization: Bearer`` or
``x-adcp-auth``) sees its own buys' drafts (a principal with role admin: its tenant's);
the tenant-management API key (``X-Tenant-Management-API-Key``) sees every tenant and
names one with ``?tenant_id=`` for ``/config``. Field names are camelCase, as the seed's
frontend reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adcp_agent.rest.http_io import app_state, authenticated_caller, endpoint, read_model
from adcp_agent.services import admin_keys, notifications
from adcp_agent.services.notifications import RenderedDraft, Viewer


class SendEmailBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    draft_id: str = Field(alias="draftId", min_length=1, max_length=64)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def draft_json(rendered: RenderedDraft) -> dict[str, Any]:
    d = rendered.draft
    return {
        "id": d.draft_id,
        "draftId": d.draft_id,
        "tenantId": d.tenant_id,
        "mediaBuyId": d.media_buy_id,
        "eventId": d.event_id,
        "eventType": d.event_type,
        "status": d.status,
        "subject": rendered.subject,
        "body": rendered.body,
        "recipients": rendered.recipients,
        "createdAt": _iso(d.created_at),
        "sentAt": _iso(d.sent_at),
        "emailId": d.email_id,
    }


async def viewer(request: Request) -> Viewer:
    """The admin key when one is sent (it must be valid), else the buyer's token."""
    key = request.headers.get(admin_keys.HEADER)
    if key is not None:
        await admin_keys.verify_api_key(app_state(request).db, key)
        return Viewer(tenant_id=None)
    caller = await authenticated_caller(request)
    return Viewer(caller.tenant_id, caller.principal_id, tenant_admin=caller.role == "admin")


async def get_config(request: Request) -> Response:
    who = await viewer(request)
    body = await notifications.config(
        app_state(request), who, request.query_params.get("tenant_id")
    )
    return JSONResponse(body)


async def get_draft(request: Request) -> Response:
    who = await viewer(request)
    rendered = await notifications.get_draft(app_state(request), who, request.path_params["id"])
    return JSONResponse(draft_json(rendered))


async def draft_by_media_buy(request: Request) -> Response:
    who = await viewer(request)
    rendered = await notifications.latest_for_media_buy(
        app_state(request), who, request.path_params["media_buy_id"]
    )
    return JSONResponse(draft_json(rendered))


async def send_email(request: Request) -> Response:
    who = await viewer(request)
    body = await read_model(request, SendEmailBody)
    rendered = await notifications.send_email(app_state(request), who, body.draft_id)
    count = len(rendered.recipients)
    return JSONResponse(
        {
            "success": True,
            "message": f"Email sent to {count} recipient{'s' if count != 1 else ''}.",
            "emailId": rendered.draft.email_id,
            "draft": draft_json(rendered),
        }
    )


def notification_routes() -> list[BaseRoute]:
    base = "/api/notifications"
    return [
        Route(f"{base}/config", endpoint(get_config), methods=["GET"]),
        Route(
            f"{base}/draft/by-media-buy/{{media_buy_id}}",
            endpoint(draft_by_media_buy),
            methods=["GET"],
        ),
        Route(f"{base}/draft/{{id}}", endpoint(get_draft), methods=["GET"]),
        Route(f"{base}/send-email", endpoint(send_email), methods=["POST"]),
    ]
