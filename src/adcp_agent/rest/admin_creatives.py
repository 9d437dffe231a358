"""Tenant-management endpoints for creative review (tenants with
``features.creative_approval: "manual"``): the queue, approve, reject with a reason."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from adcp_agent.db.models_creatives import Creative
from adcp_agent.errors import AdcpError
from adcp_agent.rest.admin_http import admin_route, ok, read_body, read_query
from adcp_agent.services import creatives
from adcp_agent.state import AppState


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewQuery(_Strict):
    tenant_id: str | None = None


class Decision(_Strict):
    reason: str | None = Field(default=None, max_length=2000)


class CreativeView(BaseModel):
    id: int
    tenant_id: str
    principal_id: str
    creative_id: str
    name: str
    format_id: str
    status: str
    click_url: str | None
    assets: dict[str, Any]
    industry_identifiers: list[dict[str, Any]] | None
    provenance: dict[str, Any] | None
    rejection_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: Creative) -> CreativeView:
        return cls(**c.model_dump(include=set(cls.model_fields)))


class ReviewQueue(BaseModel):
    creatives: list[CreativeView]


def creative_review_routes(state: AppState) -> list[BaseRoute]:
    async def queue(request: Request) -> Response:
        query = read_query(request, ReviewQuery)
        pending = await creatives.pending_review(state, query.tenant_id)
        return ok(ReviewQueue(creatives=[CreativeView.of(c) for c in pending]))

    async def decide(request: Request, approve: bool) -> Response:
        body = await read_body(request, Decision)
        raw = request.path_params["creative"]
        # ASCII digits within a 64-bit row id: "²" is a digit to str.isdigit, and 2**63
        # overflowed the database's integer (an HTTP 500).
        if not (raw.isascii() and raw.isdigit() and int(raw) < 2**63):
            raise AdcpError(
                "VALIDATION_ERROR", "The creative is addressed by its numeric id.", field="creative"
            )
        creative = await creatives.decide(
            state, None, int(raw), approve=approve, reason=body.reason, actor="admin:api"
        )
        return ok(CreativeView.of(creative))

    async def approve(request: Request) -> Response:
        return await decide(request, True)

    async def reject(request: Request) -> Response:
        return await decide(request, False)

    return [
        admin_route("/creatives/review", state, {"GET": queue}),
        admin_route("/creatives/{creative}/approve", state, {"POST": approve}),
        admin_route("/creatives/{creative}/reject", state, {"POST": reject}),
    ]
