"""The admin side of the lifecycle: the approval queue and billing accounts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from adcp_agent_adapters.mock import MockAdapter
from sqlmodel import col, update

from adcp_agent import demo_catalog
from adcp_agent.db.models_media import Task
from adcp_agent.db.types import utcnow
from adcp_agent.services import approvals, catalog_admin, interrupted
from tests.media_helpers import guaranteed
from tests.support import assert_valid
from tests.tenant_admin_support import AdminApi, admin_api


async def _publisher(api: AdminApi) -> tuple[str, dict]:
    await api.init_key()
    tenant = await api.create_tenant(name="Riverside", subdomain="riverside", ad_server="mock")
    await catalog_admin.load_catalog(
        api.state.db,
        tenant["tenant_id"],
        formats=demo_catalog.FORMATS,
        properties=demo_catalog.PROPERTIES,
        products=demo_catalog.PRODUCTS,
        signals=demo_catalog.SIGNALS,
    )
    return tenant["tenant_id"], await api.create_principal(tenant["tenant_id"], name="Agency")


async def test_admin_sees_the_queue_and_decides(tmp_path: Path) -> None:
    async with admin_api(tmp_path) as api:
        tenant_id, buyer = await _publisher(api)
        token = buyer["access_token"]
        first = await api.mcp_result("create_media_buy", guaranteed(), token)
        second = await api.mcp_result("create_media_buy", guaranteed(), token)
        queue = await api.request("GET", f"/approvals?tenant_id={tenant_id}")
        no_reason = await api.request("POST", f"/approvals/{second['task_id']}/reject", json={})
        rejected = await api.request(
            "POST",
            f"/approvals/{second['task_id']}/reject",
            json={"reason": "Creative policy: no alcohol on CTV"},
        )
        approved = await api.request("POST", f"/approvals/{first['task_id']}/approve")
        twice = await api.request("POST", f"/approvals/{first['task_id']}/approve")
        unknown = await api.request("POST", "/approvals/task_nope/approve")
        no_key = await api.client.get("/api/v1/tenant-management/approvals")
        done = await api.mcp_result("get_task_status", {"task_id": first["task_id"]}, token)
        declined = await api.mcp_result("get_task_status", {"task_id": second["task_id"]}, token)
        turned_down = await api.mcp_result(
            "get_media_buys", {"media_buy_ids": [rejected.json()["media_buy_id"]]}, token
        )
    assert queue.status_code == 200
    assert [t["task_id"] for t in queue.json()["tasks"]] == [first["task_id"], second["task_id"]]
    assert (
        no_reason.status_code == 422 and no_reason.json()["error"]["details"]["field"] == "reason"
    )
    assert rejected.json()["media_buy_state"] == "rejected"
    assert approved.status_code == 200 and approved.json()["task"]["decided_by"] == "admin:api"
    assert twice.status_code == 409
    assert unknown.status_code == 404
    assert no_key.status_code == 401
    assert done["status"] == "completed" and done["result"]["media_buy_id"]
    assert_valid("get_task_status", done)
    assert "no alcohol" in declined["error"]["message"]
    [buy] = turned_down["media_buys"]
    assert_valid("get_media_buys", turned_down)
    assert buy["status"] == "rejected"
    assert buy["rejection_reason"] == "Creative policy: no alcohol on CTV"


async def test_admin_manages_accounts_and_suspension_blocks_buying(tmp_path: Path) -> None:
    async with admin_api(tmp_path) as api:
        tenant_id, buyer = await _publisher(api)
        token = buyer["access_token"]
        created = await api.request(
            "POST",
            f"/tenants/{tenant_id}/accounts",
            json={
                "name": "Acme via Northstar",
                "principal_ids": [buyer["principal_id"]],
                "brand_domain": "acme.example",
                "operator": "northstar.example",
                "credit_limit": 250000,
                "payment_terms": "net_30",
            },
        )
        account_id = created.json()["account_id"]
        listed = await api.mcp_result("list_accounts", {}, token)
        usable = await api.mcp_result(
            "create_media_buy", {**guaranteed(), "account": {"account_id": account_id}}, token
        )
        suspended = await api.request(
            "PATCH", f"/tenants/{tenant_id}/accounts/{account_id}", json={"status": "suspended"}
        )
        blocked = await api.mcp_result(
            "create_media_buy", {**guaranteed(), "account": {"account_id": account_id}}, token
        )
        bad_field = await api.request(
            "PATCH", f"/tenants/{tenant_id}/accounts/{account_id}", json={"colour": "red"}
        )
        stranger = await api.request(
            "POST",
            f"/tenants/{tenant_id}/accounts",
            json={"name": "X", "principal_ids": ["principal_ghost"]},
        )
        all_accounts = await api.request("GET", f"/tenants/{tenant_id}/accounts")
    assert created.status_code == 201 and created.json()["credit_limit"] == 250000
    assert account_id in {a["account_id"] for a in listed["accounts"]}
    assert usable["status"] == "submitted"
    assert suspended.json()["status"] == "suspended"
    assert blocked["errors"][0]["code"] == "ACCOUNT_SUSPENDED"
    assert (
        bad_field.status_code == 422 and bad_field.json()["error"]["details"]["field"] == "colour"
    )
    assert stranger.status_code == 404
    names = {a["name"] for a in all_accounts.json()["accounts"]}
    assert {"Agency (default)", "Acme via Northstar"} <= names


async def test_sync_orders_follows_changes_made_in_the_ad_server(tmp_path: Path) -> None:
    from adcp_agent_adapters.mock import load_state, store_order

    from tests.media_helpers import non_guaranteed

    async with admin_api(tmp_path) as api:
        tenant_id, buyer = await _publisher(api)
        token = buyer["access_token"]
        paused_there = await api.mcp_result("create_media_buy", non_guaranteed(budget=900), token)
        untouched = await api.mcp_result("create_media_buy", non_guaranteed(budget=800), token)
        # The publisher pauses one order in the ad server's own UI.
        path = tmp_path / "adapters" / f"{tenant_id}-mock.state"
        orders, _ = load_state(path)
        for order_id, order in orders.items():
            if order.spec.media_buy_id == paused_there["media_buy_id"]:
                order.status = "paused"
                store_order(path, order_id, order)
        report = await api.request("POST", f"/tenants/{tenant_id}/sync-orders")
        again = await api.request("POST", f"/tenants/{tenant_id}/sync-orders")
        buys = await api.mcp_result(
            "get_media_buys",
            {"media_buy_ids": [paused_there["media_buy_id"], untouched["media_buy_id"]]},
            token,
        )
        unknown = await api.request("POST", "/tenants/nope/sync-orders")
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["orders_checked"] == 2 and body["in_sync"] == 1
    assert body["updated"] == [
        {
            "media_buy_id": paused_there["media_buy_id"],
            "was": "live",
            "now": "paused",
            "ad_server_status": "paused",
        }
    ]
    assert again.json()["in_sync"] == 2 and again.json()["updated"] == []
    status = {b["media_buy_id"]: b["status"] for b in buys["media_buys"]}
    assert status[paused_there["media_buy_id"]] == "paused"
    assert status[untouched["media_buy_id"]] == "pending_start"
    assert unknown.status_code == 404


async def test_two_decisions_of_one_task_at_once_reach_the_ad_server_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An approval and a rejection of the same task at the same moment: the first to
    claim the task decides it; the other is refused before it calls the ad server, so
    the order's state there is the decision's."""
    called: list[str] = []
    original = MockAdapter.order_action

    async def slow(self: MockAdapter, order_id: str, action: Any) -> None:
        called.append(action)
        await asyncio.sleep(0.05)  # the ad server takes its time: the other decision arrives
        await original(self, order_id, action)

    monkeypatch.setattr(MockAdapter, "order_action", slow)
    async with admin_api(tmp_path) as api:
        tenant_id, buyer = await _publisher(api)
        submitted = await api.mcp_result("create_media_buy", guaranteed(), buyer["access_token"])
        path = f"/approvals/{submitted['task_id']}"
        approved, rejected = await asyncio.gather(
            api.request("POST", f"{path}/approve"),
            api.request("POST", f"{path}/reject", json={"reason": "Sold out"}),
        )
        task = await api.mcp_result(
            "get_task_status", {"task_id": submitted["task_id"]}, buyer["access_token"]
        )
    # Which claims the task first is the event loop's (and the database's) to decide.
    assert sorted([approved.status_code, rejected.status_code]) == [200, 409], (
        approved.text,
        rejected.text,
    )
    approve_won = approved.status_code == 200
    loser = rejected if approve_won else approved
    assert loser.json()["error"]["code"] == "INVALID_STATE"
    assert task["status"] == ("completed" if approve_won else "rejected")
    # The ad server heard the winner only: the approval's two calls, or nothing at all.
    assert called == (["approve", "activate"] if approve_won else [])


async def test_a_decision_left_unfinished_goes_back_to_the_queue(tmp_path: Path) -> None:
    async with admin_api(tmp_path) as api:
        tenant_id, buyer = await _publisher(api)
        submitted = await api.mcp_result("create_media_buy", guaranteed(), buyer["access_token"])
        stale = utcnow() - approvals.DECIDING - timedelta(seconds=1)
        async with api.state.db.engine.begin() as conn:  # a server stopped mid-decision
            await conn.execute(
                update(Task)
                .where(col(Task.task_id) == submitted["task_id"])
                .values(status="working", decided_by="admin:api", updated_at=stale)
            )
        busy = await api.request("POST", f"/approvals/{submitted['task_id']}/approve")
        await interrupted.sweep(api.state, utcnow())
        approved = await api.request("POST", f"/approvals/{submitted['task_id']}/approve")
    assert busy.status_code == 409
    assert approved.status_code == 200, approved.text
