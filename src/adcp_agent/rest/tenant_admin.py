"""The tenant-management REST API (``/api/v1/tenant-management``): publisher admins
manage tenants, their buyer principals and inventory sync with ``curl``. Handlers only
translate HTTP to service calls; rules and queries live in ``services.tenant_admin``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from adcp_agent.rest.admin_approvals import approval_routes
from adcp_agent.rest.admin_clock import clock_routes
from adcp_agent.rest.admin_creatives import creative_review_routes
from adcp_agent.rest.admin_http import admin_route, ok, read_body, read_query, unknown_path_route
from adcp_agent.rest.admin_identities import identity_routes
from adcp_agent.rest.admin_system import system_routes
from adcp_agent.rest.admin_views import (
    IssuedPrincipalView,
    PrincipalPage,
    PrincipalView,
    SyncReportView,
    TenantPage,
    TenantView,
)
from adcp_agent.services import inventory_sync, tenant_admin
from adcp_agent.services.admin_models import (
    PrincipalCreate,
    PrincipalUpdate,
    TenantCreate,
    TenantUpdate,
    TokenRotation,
)
from adcp_agent.services.paging import PageRequest
from adcp_agent.services.tenants import IssuedToken
from adcp_agent.state import AppState


def _issued(issued: IssuedToken) -> IssuedPrincipalView:
    view = PrincipalView.of(issued.principal)
    return IssuedPrincipalView(**view.model_dump(), access_token=issued.token)


def tenant_routes(state: AppState) -> list[BaseRoute]:
    db, registry = state.db, state.registry

    async def list_tenants(request: Request) -> Response:
        page = await tenant_admin.list_tenants(db, read_query(request, PageRequest))
        return ok(
            TenantPage(
                tenants=[TenantView.of(t) for t in page.items],
                next_cursor=page.next_cursor,
                has_more=page.has_more,
            )
        )

    async def create_tenant(request: Request) -> Response:
        body = await read_body(request, TenantCreate)
        return ok(
            TenantView.of(await tenant_admin.create_tenant(db, registry, state.secrets, body)), 201
        )

    async def get_tenant(request: Request) -> Response:
        tenant_id = request.path_params["tenant_id"]
        return ok(TenantView.of(await tenant_admin.require_tenant(db, tenant_id)))

    async def update_tenant(request: Request) -> Response:
        body = await read_body(request, TenantUpdate)
        tenant_id = request.path_params["tenant_id"]
        updated = await tenant_admin.update_tenant(db, registry, state.secrets, tenant_id, body)
        return ok(TenantView.of(updated))

    async def delete_tenant(request: Request) -> Response:
        tenant_id = request.path_params["tenant_id"]
        return ok(TenantView.of(await tenant_admin.delete_tenant(db, tenant_id)))

    async def sync_inventory(request: Request) -> Response:
        tenant_id = request.path_params["tenant_id"]
        report = await inventory_sync.sync_inventory(db, registry, state.secrets, tenant_id)
        return ok(SyncReportView.of(report))

    async def list_principals(request: Request) -> Response:
        tenant_id = request.path_params["tenant_id"]
        page = await tenant_admin.list_principals(db, tenant_id, read_query(request, PageRequest))
        return ok(
            PrincipalPage(
                principals=[PrincipalView.of(p) for p in page.items],
                next_cursor=page.next_cursor,
                has_more=page.has_more,
            )
        )

    async def create_principal(request: Request) -> Response:
        body = await read_body(request, PrincipalCreate)
        tenant_id = request.path_params["tenant_id"]
        return ok(_issued(await tenant_admin.create_principal(db, tenant_id, body)), 201)

    async def get_principal(request: Request) -> Response:
        tenant_id, principal_id = request.path_params["tenant_id"], request.path_params["pid"]
        return ok(
            PrincipalView.of(await tenant_admin.require_principal(db, tenant_id, principal_id))
        )

    async def update_principal(request: Request) -> Response:
        body = await read_body(request, PrincipalUpdate)
        tenant_id, principal_id = request.path_params["tenant_id"], request.path_params["pid"]
        principal = await tenant_admin.update_principal(db, tenant_id, principal_id, body)
        return ok(PrincipalView.of(principal))

    async def revoke_principal(request: Request) -> Response:
        tenant_id, principal_id = request.path_params["tenant_id"], request.path_params["pid"]
        principal = await tenant_admin.revoke_principal(db, tenant_id, principal_id)
        return ok(PrincipalView.of(principal))

    async def rotate_token(request: Request) -> Response:
        body = await read_body(request, TokenRotation)
        tenant_id, principal_id = request.path_params["tenant_id"], request.path_params["pid"]
        issued = await tenant_admin.rotate_principal_token(
            db, tenant_id, principal_id, body.access_token
        )
        return ok(_issued(issued))

    tenant = "/tenants/{tenant_id}"
    principal = tenant + "/principals/{pid}"
    return [
        admin_route("/tenants", state, {"GET": list_tenants, "POST": create_tenant}),
        admin_route(
            tenant,
            state,
            {
                "GET": get_tenant,
                "PUT": update_tenant,
                "PATCH": update_tenant,
                "DELETE": delete_tenant,
            },
        ),
        admin_route(tenant + "/sync-inventory", state, {"POST": sync_inventory}),
        admin_route(
            tenant + "/principals", state, {"GET": list_principals, "POST": create_principal}
        ),
        admin_route(
            principal,
            state,
            {
                "GET": get_principal,
                "PUT": update_principal,
                "PATCH": update_principal,
                "DELETE": revoke_principal,
            },
        ),
        admin_route(principal + "/rotate-token", state, {"POST": rotate_token}),
    ]


def tenant_admin_routes(state: AppState) -> list[BaseRoute]:
    """Everything under ``/api/v1/tenant-management``, ending with a JSON 404."""
    return [
        *system_routes(state),
        *tenant_routes(state),
        *approval_routes(state),
        *creative_review_routes(state),
        *identity_routes(state),
        *clock_routes(state),
        unknown_path_route(),
    ]
