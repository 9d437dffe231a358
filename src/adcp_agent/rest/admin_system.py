"""Installation-level admin routes: the API key's one-time init and rotation, the
admin health check and the audit trail."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adcp_agent import __version__
from adcp_agent.rest.admin_http import admin_route, ok, read_body, read_query
from adcp_agent.rest.admin_views import AdminHealth, ApiKeyIssued, AuditLogPage, AuditLogView
from adcp_agent.services import admin_keys, audit_log, tenant_admin
from adcp_agent.state import AppState


class _NoBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def system_routes(state: AppState) -> list[Route]:
    async def init_api_key(request: Request) -> Response:
        await read_body(request, _NoBody)
        key = await admin_keys.init_api_key(state.db)
        return ok(ApiKeyIssued(api_key=key, header=admin_keys.HEADER), 201)

    async def rotate_api_key(request: Request) -> Response:
        await read_body(request, _NoBody)
        presented = request.headers.get(admin_keys.HEADER, "")
        key = await admin_keys.rotate_api_key(state.db, presented)
        return ok(ApiKeyIssued(api_key=key, header=admin_keys.HEADER))

    async def health(request: Request) -> Response:
        # The key lives in the database: with the database down the key cannot be
        # checked, and "degraded" (which reveals nothing) is the useful answer.
        db_ok = await state.db.ping()
        if db_ok:
            await admin_keys.verify_api_key(state.db, request.headers.get(admin_keys.HEADER))
        body = AdminHealth(
            status="healthy" if db_ok else "degraded",
            database="connected" if db_ok else "unreachable",
            version=__version__,
            tenants_count=await tenant_admin.count_tenants(state.db) if db_ok else None,
        )
        return ok(body, 200 if db_ok else 503)

    async def audit_logs(request: Request) -> Response:
        query = read_query(request, audit_log.AuditQuery)
        page = await audit_log.list_audit_logs(state.db, query)
        return ok(
            AuditLogPage(
                audit_logs=[AuditLogView.of(row) for row in page.items],
                next_cursor=page.next_cursor,
                has_more=page.has_more,
            )
        )

    return [
        admin_route("/init-api-key", state, {"POST": init_api_key}, auth=False),
        admin_route("/api-key/rotate", state, {"POST": rotate_api_key}),
        admin_route("/health", state, {"GET": health}, auth=False),
        admin_route("/audit-logs", state, {"GET": audit_logs}),
    ]
