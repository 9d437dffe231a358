"""Tenant-management endpoints for the publisher's identity graph: the identifiers of
its own users (hashed e-mails and phones, universal ids) that buyers' sync_audiences
lists are matched against. Loading or removing users matches every audience again.

    POST   /tenants/{tenant_id}/identities      {"users": [{user_key, hashed_email?, …}]}
    GET    /tenants/{tenant_id}/identities      how many users and identifiers
    DELETE /tenants/{tenant_id}/identities      {"user_keys": [...]}
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from adcp_agent.errors import AdcpError
from adcp_agent.rest.admin_http import admin_route, ok, read_body
from adcp_agent.services import audience_matching, audiences, tenants
from adcp_agent.state import AppState


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Load(_Strict):
    users: list[Any] = Field(
        description="Up to 10,000 users: {user_key, hashed_email?, hashed_phone?, "
        "uids?: [{type, value}]}; each user's identifiers replace the ones it had."
    )


class Remove(_Strict):
    user_keys: list[str] = Field(min_length=1, max_length=audience_matching.MAX_USERS)


class Graph(BaseModel):
    users: int
    identifiers_by_type: dict[str, int]
    audiences_rematched: int


def identity_routes(state: AppState) -> list[BaseRoute]:
    async def tenant_of(request: Request) -> str:
        tenant_id = request.path_params["tenant_id"]
        if await tenants.get_tenant(state.db, tenant_id) is None:
            raise AdcpError("NOT_FOUND", f"Tenant '{tenant_id}' was not found.", field="tenant_id")
        return str(tenant_id)

    async def summary(request: Request) -> Response:
        graph = await audience_matching.summary(state.db, await tenant_of(request))
        return ok(Graph(**graph.to_dict()))

    async def load(request: Request) -> Response:
        tenant_id = await tenant_of(request)
        body = await read_body(request, Load)
        graph = await audience_matching.load_users(
            state.db, tenant_id, body.users, audiences.identifiers
        )
        return ok(Graph(**graph.to_dict()))

    async def remove(request: Request) -> Response:
        tenant_id = await tenant_of(request)
        body = await read_body(request, Remove)
        graph = await audience_matching.remove_users(state.db, tenant_id, body.user_keys)
        return ok(Graph(**graph.to_dict()))

    return [
        admin_route(
            "/tenants/{tenant_id}/identities",
            state,
            {"GET": summary, "POST": load, "DELETE": remove},
        )
    ]
