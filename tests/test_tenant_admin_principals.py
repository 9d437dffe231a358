"""Principals (buyers) and inventory sync over the tenant-management API; tokens are
checked the way a buyer would find out: by calling MCP with them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from adcp_agent.db.models_admin import SyncedInventoryItem
from tests.tenant_admin_support import (
    SEED_TENANT_BODY,
    AdminApi,
    FakeGamAdapter,
    admin_api,
    error_of,
)

CUSTOM_TOKEN = "acme_custom_token_0123456789"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[AdminApi]:
    async with admin_api(tmp_path) as api:
        await api.init_key()
        yield api


@pytest.fixture
async def tid(api: AdminApi) -> str:
    return (await api.create_tenant(subdomain="pub", tenant_id="pub"))["tenant_id"]


async def _codes(api: AdminApi, token: str) -> list[str]:
    result = await api.mcp_result("get_products", {"brief": "video"}, token)
    return [e["code"] for e in result.get("errors", [])]


async def test_token_is_shown_once_and_authenticates_on_mcp(api: AdminApi, tid: str) -> None:
    created = await api.create_principal(tid, name="Acme Advertiser", gam_advertiser_id="456789")
    token = created["access_token"]
    fetched = await api.request("GET", f"/tenants/{tid}/principals/{created['principal_id']}")
    listed = await api.request("GET", f"/tenants/{tid}/principals")
    assert created["status"] == "active"
    assert created["platform_mappings"] == {"gam_advertiser_id": "456789"}
    assert token.startswith(created["token_hint"])
    assert "access_token" not in fetched.json() and token not in fetched.text
    assert token not in listed.text
    assert [p["name"] for p in listed.json()["principals"]] == ["Acme Advertiser"]
    assert await _codes(api, token) == []


async def test_custom_token_rules(api: AdminApi, tid: str) -> None:
    custom = await api.create_principal(tid, access_token=CUSTOM_TOKEN, principal_id="acme")
    short = await api.request(
        "POST", f"/tenants/{tid}/principals", json={"name": "B", "access_token": "too_short"}
    )
    reused = await api.request(
        "POST", f"/tenants/{tid}/principals", json={"name": "C", "access_token": CUSTOM_TOKEN}
    )
    assert custom["access_token"] == CUSTOM_TOKEN
    assert await _codes(api, CUSTOM_TOKEN) == []
    assert short.status_code == 422 and error_of(short)["details"]["field"] == "access_token"
    assert reused.status_code == 409 and error_of(reused)["details"]["field"] == "access_token"


async def test_principal_ids_are_unique_across_tenants(api: AdminApi, tid: str) -> None:
    other = (await api.create_tenant(subdomain="other"))["tenant_id"]
    await api.create_principal(tid, principal_id="acme")
    clash = await api.request(
        "POST", f"/tenants/{other}/principals", json={"name": "A", "principal_id": "acme"}
    )
    assert clash.status_code == 409
    assert error_of(clash)["details"]["field"] == "principal_id"


async def test_principals_are_scoped_to_their_tenant(api: AdminApi, tid: str) -> None:
    other = (await api.create_tenant(subdomain="other"))["tenant_id"]
    pid = (await api.create_principal(tid, principal_id="acme"))["principal_id"]
    for method, suffix in [("GET", ""), ("PUT", ""), ("DELETE", ""), ("POST", "/rotate-token")]:
        response = await api.request(method, f"/tenants/{other}/principals/{pid}{suffix}", json={})
        assert response.status_code == 404, (method, suffix)
        assert error_of(response)["details"]["field"] == "principal_id"
    assert (await api.request("GET", f"/tenants/{other}/principals")).json()["principals"] == []


async def test_update_renames_and_merges_mappings(api: AdminApi, tid: str) -> None:
    pid = (await api.create_principal(tid, gam_advertiser_id="1"))["principal_id"]
    response = await api.request(
        "PUT",
        f"/tenants/{tid}/principals/{pid}",
        json={"name": "Renamed", "platform_mappings": {"kevel_advertiser_id": 7}},
    )
    unknown = await api.request("PUT", f"/tenants/{tid}/principals/{pid}", json={"role": "admin"})
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert response.json()["platform_mappings"] == {
        "gam_advertiser_id": "1",
        "kevel_advertiser_id": 7,
    }
    assert unknown.status_code == 422 and error_of(unknown)["details"]["field"] == "role"


async def test_delete_revokes_at_once(api: AdminApi, tid: str) -> None:
    created = await api.create_principal(tid)
    pid, token = created["principal_id"], created["access_token"]
    assert await _codes(api, token) == []
    revoked = await api.request("DELETE", f"/tenants/{tid}/principals/{pid}")
    again = await api.request("DELETE", f"/tenants/{tid}/principals/{pid}")
    rotate = await api.request("POST", f"/tenants/{tid}/principals/{pid}/rotate-token")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"]
    assert await _codes(api, token) == ["AUTH_INVALID"]
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    # Rotating would quietly un-revoke the buyer.
    assert rotate.status_code == 409 and error_of(rotate)["code"] == "INVALID_STATE"
    assert await _codes(api, token) == ["AUTH_INVALID"]
    revocations = await api.request(
        "GET", "/audit-logs", params={"principal_id": pid, "action": "principal.revoke"}
    )
    assert len(revocations.json()["audit_logs"]) == 1


async def test_rotate_token_retires_the_old_token(api: AdminApi, tid: str) -> None:
    created = await api.create_principal(tid)
    pid, old = created["principal_id"], created["access_token"]
    rotated = await api.request("POST", f"/tenants/{tid}/principals/{pid}/rotate-token")
    custom = await api.request(
        "POST",
        f"/tenants/{tid}/principals/{pid}/rotate-token",
        json={"access_token": CUSTOM_TOKEN},
    )
    assert rotated.status_code == custom.status_code == 200
    new = rotated.json()["access_token"]
    assert new != old
    assert await _codes(api, old) == ["AUTH_INVALID"]
    assert await _codes(api, new) == ["AUTH_INVALID"]  # replaced again by the custom one
    assert await _codes(api, CUSTOM_TOKEN) == []


# --- inventory sync ----------------------------------------------------------------


async def _stored_items(api: AdminApi, tenant_id: str) -> dict[str, SyncedInventoryItem]:
    async with api.state.db.session() as session:
        rows = (
            await session.exec(
                select(SyncedInventoryItem).where(SyncedInventoryItem.tenant_id == tenant_id)
            )
        ).all()
    return {row.item_id: row for row in rows}


async def test_sync_inventory_reports_counts_and_upserts(api: AdminApi) -> None:
    tid = (await api.create_tenant(**SEED_TENANT_BODY))["tenant_id"]
    first = await api.request("POST", f"/tenants/{tid}/sync-inventory")
    FakeGamAdapter.extra_units = 2
    second = await api.request("POST", f"/tenants/{tid}/sync-inventory")
    assert first.status_code == 200, first.text
    assert first.json()["by_kind"] == {"ad_unit": 2, "network": 1, "placement": 1}
    assert (first.json()["created"], first.json()["updated"]) == (4, 0)
    assert second.json()["by_kind"] == {"ad_unit": 4, "network": 1, "placement": 1}
    assert (second.json()["created"], second.json()["updated"]) == (2, 4)
    stored = await _stored_items(api, tid)
    assert len(stored) == 6
    assert stored["au_home"].parent_id == "net_123456789"
    assert stored["au_home"].kind == "ad_unit"


async def test_sync_inventory_with_the_mock_adapter(api: AdminApi, tid: str) -> None:
    response = await api.request("POST", f"/tenants/{tid}/sync-inventory")
    assert response.status_code == 200
    assert response.json()["ad_server"] == "mock"
    assert response.json()["total"] == len(await _stored_items(api, tid)) > 0


async def test_a_failing_ad_server_is_a_503_and_audited(api: AdminApi) -> None:
    body = {**SEED_TENANT_BODY, "adapter_config": {"fail_sync": True}}
    tid = (await api.create_tenant(**body))["tenant_id"]
    response = await api.request("POST", f"/tenants/{tid}/sync-inventory")
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert "unreachable" not in error["message"]  # the adapter's internals stay in the log
    assert await _stored_items(api, tid) == {}
    logs = await api.request(
        "GET", "/audit-logs", params={"tenant_id": tid, "action": "tenant.sync_inventory"}
    )
    [row] = logs.json()["audit_logs"]
    assert row["success"] is False
