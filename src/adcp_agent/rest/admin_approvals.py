"""Tenant-management endpoints for the publisher's side of the lifecycle: the approval
queue of guaranteed orders, billing accounts (list, create, update/suspend, grant),
order reconciliation with the ad server, and pacing alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from adcp_agent.db.models_accounts import Account
from adcp_agent.db.models_media import MediaBuy, Task
from adcp_agent.rest.admin_http import admin_route, ok, read_body, read_query
from adcp_agent.services import (
    accounts,
    approvals,
    delivery,
    order_sync,
    pacing,
    tenant_admin,
)
from adcp_agent.state import AppState


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueueQuery(_Strict):
    tenant_id: str | None = None


class AlertQuery(_Strict):
    tenant_id: str | None = None
    severity: Literal["warning", "critical"] | None = None


class Decision(_Strict):
    reason: str | None = Field(default=None, max_length=2000)


class TaskView(BaseModel):
    task_id: str
    tenant_id: str
    principal_id: str
    task_type: str
    status: str
    media_buy_id: str | None
    message: str | None
    decided_by: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, t: Task) -> TaskView:
        return cls(**t.model_dump(include=set(cls.model_fields)))


class QueueView(BaseModel):
    tasks: list[TaskView]


class DecisionView(BaseModel):
    task: TaskView
    media_buy_id: str
    media_buy_state: str

    @classmethod
    def of(cls, task: Task, buy: MediaBuy) -> DecisionView:
        return cls(task=TaskView.of(task), media_buy_id=buy.media_buy_id, media_buy_state=buy.state)


def _length(column: str) -> int:
    """The length of an account text column: a longer value was refused by PostgreSQL
    (an HTTP 500), so the request models take theirs from the table, never drifting."""
    return Account.__table__.c[column].type.length  # type: ignore[attr-defined, no-any-return]


def _fits(column: str, *, min_length: int = 0) -> Any:
    """An optional text field that fits its account column."""
    return Field(default=None, min_length=min_length, max_length=_length(column))


class AccountCreate(_Strict):
    name: str = Field(min_length=1, max_length=_length("name"))
    principal_ids: list[str] = Field(min_length=1)
    advertiser: str | None = _fits("advertiser")
    brand_domain: str | None = _fits("brand_domain")
    operator: str | None = _fits("operator")
    billing: Literal["operator", "agent", "advertiser"] = "operator"
    payment_terms: str | None = _fits("payment_terms")
    credit_limit: float | None = Field(default=None, ge=0)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    sandbox: bool = False


class AccountUpdate(_Strict):
    name: str | None = _fits("name", min_length=1)
    advertiser: str | None = _fits("advertiser")
    status: Literal[accounts.STATUSES] | None = None  # type: ignore[valid-type]
    payment_terms: str | None = _fits("payment_terms")
    credit_limit: float | None = Field(default=None, ge=0)


class Grant(_Strict):
    principal_id: str


class AccountView(BaseModel):
    account_id: str
    name: str
    status: str
    advertiser: str | None
    brand_domain: str | None
    operator: str | None
    billing: str
    payment_terms: str | None
    credit_limit: float | None
    currency: str
    sandbox: bool
    is_default: bool
    principal_ids: list[str]
    created_at: datetime

    @classmethod
    def of(cls, a: Account, principal_ids: list[str]) -> AccountView:
        data: dict[str, Any] = a.model_dump(include=set(cls.model_fields) - {"principal_ids"})
        return cls(**data, principal_ids=principal_ids)


class AccountList(BaseModel):
    accounts: list[AccountView]


def approval_routes(state: AppState) -> list[BaseRoute]:
    async def queue(request: Request) -> Response:
        query = read_query(request, QueueQuery)
        pending = await approvals.pending(state, query.tenant_id)
        return ok(QueueView(tasks=[TaskView.of(t) for t in pending]))

    async def decide(request: Request, approve: bool) -> Response:
        body = await read_body(request, Decision)
        task, buy = await approvals.decide_as_admin(
            state,
            request.path_params["task_id"],
            approve=approve,
            reason=body.reason,
            actor="admin:api",
        )
        return ok(DecisionView.of(task, buy))

    async def approve(request: Request) -> Response:
        return await decide(request, True)

    async def reject(request: Request) -> Response:
        return await decide(request, False)

    async def account_view(tenant_id: str, account_id: str) -> AccountView:
        for account, users in await accounts.list_for_tenant(state.db, tenant_id):
            if account.account_id == account_id:
                return AccountView.of(account, users)
        raise AssertionError("account vanished")  # written in this request

    async def list_accounts(request: Request) -> Response:
        tenant_id = request.path_params["tenant_id"]
        await tenant_admin.require_tenant(state.db, tenant_id)
        rows = await accounts.list_for_tenant(state.db, tenant_id)
        return ok(AccountList(accounts=[AccountView.of(a, u) for a, u in rows]))

    async def create_account(request: Request) -> Response:
        tenant_id = request.path_params["tenant_id"]
        body = await read_body(request, AccountCreate)
        account = await accounts.create_account(
            state.db, tenant_id, **body.model_dump(), actor="admin:api"
        )
        return ok(await account_view(tenant_id, account.account_id), 201)

    async def update_account(request: Request) -> Response:
        tenant_id, account_id = request.path_params["tenant_id"], request.path_params["aid"]
        body = await read_body(request, AccountUpdate)
        await accounts.update_account(
            state.db,
            tenant_id,
            account_id,
            body.model_dump(exclude_unset=True),
            actor="admin:api",
        )
        return ok(await account_view(tenant_id, account_id))

    async def grant(request: Request) -> Response:
        tenant_id, account_id = request.path_params["tenant_id"], request.path_params["aid"]
        body = await read_body(request, Grant)
        await accounts.grant(state.db, tenant_id, account_id, body.principal_id, actor="admin:api")
        return ok(await account_view(tenant_id, account_id))

    async def sync_orders(request: Request) -> Response:
        report = await order_sync.sync_orders(
            state, request.path_params["tenant_id"], actor="admin:api"
        )
        return JSONResponse(
            {
                "orders_checked": report.orders_checked,
                "in_sync": report.in_sync,
                "updated": report.updated,
                "unmapped": report.unmapped,
                "missing": report.missing,
            }
        )

    async def pacing_alerts(request: Request) -> Response:
        query = read_query(request, AlertQuery)
        # Bring every running buy's delivery up to now, so alerts are current.
        await delivery.catch_up_all(state, state.clock.now())
        rows = await pacing.alerts(state.db, tenant_id=query.tenant_id, severity=query.severity)
        return JSONResponse({"alerts": [pacing.alert_view(a) for a in rows]})

    account = "/tenants/{tenant_id}/accounts"
    return [
        admin_route("/pacing-alerts", state, {"GET": pacing_alerts}),
        admin_route("/tenants/{tenant_id}/sync-orders", state, {"POST": sync_orders}),
        admin_route("/approvals", state, {"GET": queue}),
        admin_route("/approvals/{task_id}/approve", state, {"POST": approve}),
        admin_route("/approvals/{task_id}/reject", state, {"POST": reject}),
        admin_route(account, state, {"GET": list_accounts, "POST": create_account}),
        admin_route(account + "/{aid}", state, {"PATCH": update_account, "PUT": update_account}),
        admin_route(account + "/{aid}/principals", state, {"POST": grant}),
    ]
