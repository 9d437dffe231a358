"""The audit trail of admin actions and cursor pagination across the admin lists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.tenant_admin_support import SEED_TENANT_BODY, AdminApi, admin_api, error_of


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[AdminApi]:
    async with admin_api(tmp_path) as api:
        await api.init_key()
        yield api


async def _walk(api: AdminApi, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Follow next_cursor to the end, as a client would."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = (await api.request("GET", path, params=query)).json()
        items += body[key]
        assert body["has_more"] == (body["next_cursor"] is not None)
        if not body["has_more"]:
            return items
        cursor = body["next_cursor"]
    raise AssertionError("pagination never ended")


async def test_every_admin_mutation_is_audited_as_admin(api: AdminApi) -> None:
    tid = (await api.create_tenant(**SEED_TENANT_BODY))["tenant_id"]
    await api.request("PUT", f"/tenants/{tid}", json={"name": "Renamed"})
    pid = (await api.create_principal(tid))["principal_id"]
    await api.request("PUT", f"/tenants/{tid}/principals/{pid}", json={"name": "B"})
    await api.request("POST", f"/tenants/{tid}/principals/{pid}/rotate-token")
    await api.request("DELETE", f"/tenants/{tid}/principals/{pid}")
    await api.request("POST", f"/tenants/{tid}/sync-inventory")
    await api.request("DELETE", f"/tenants/{tid}")
    rotated = await api.request("POST", "/api-key/rotate")
    api.key = rotated.json()["api_key"]

    rows = await _walk(api, "/audit-logs", "audit_logs")
    expected = [
        "admin_api_key.rotate",
        "tenant.delete",
        "tenant.sync_inventory",
        "principal.revoke",
        "principal.rotate_token",
        "principal.update",
        "principal.create",
        "tenant.update",
        "tenant.create",
        "admin_api_key.init",
    ]
    # Newest first; other features may add rows of their own alongside these.
    assert [r["action"] for r in rows if r["action"] in expected] == expected
    assert {r["actor"] for r in rows} == {"admin"}
    [update] = [r for r in rows if r["action"] == "tenant.update"]
    assert update["before"] == {"name": "Sports Publisher"}
    assert update["after"] == {"name": "Renamed"}


async def test_filters_by_tenant_principal_and_action(api: AdminApi) -> None:
    one = (await api.create_tenant(subdomain="one"))["tenant_id"]
    two = (await api.create_tenant(subdomain="two"))["tenant_id"]
    pid = (await api.create_principal(one))["principal_id"]
    await api.create_principal(one)
    await api.request("POST", f"/tenants/{one}/principals/{pid}/rotate-token")
    await api.request("PUT", f"/tenants/{two}", json={"name": "Two"})

    by_tenant = await _walk(api, "/audit-logs", "audit_logs", tenant_id=two)
    by_principal = await _walk(api, "/audit-logs", "audit_logs", principal_id=pid)
    by_action = await _walk(api, "/audit-logs", "audit_logs", action="principal.create")
    combined = await _walk(
        api, "/audit-logs", "audit_logs", tenant_id=two, action="principal.create"
    )
    assert [r["action"] for r in by_tenant] == ["tenant.update", "tenant.create"]
    assert {r["tenant_id"] for r in by_tenant} == {two}
    assert [r["action"] for r in by_principal] == ["principal.rotate_token", "principal.create"]
    assert {r["target_id"] for r in by_principal} == {pid}
    assert len(by_action) == 2 and {r["tenant_id"] for r in by_action} == {one}
    assert combined == []


async def test_since_is_inclusive_and_until_exclusive(api: AdminApi) -> None:
    for n in range(6):
        await api.create_tenant(subdomain=f"t{n}")
    rows = await _walk(api, "/audit-logs", "audit_logs")
    pivot = rows[3]["created_at"]  # an ISO datetime with "Z", as the API returns it
    since = await _walk(api, "/audit-logs", "audit_logs", since=pivot)
    until = await _walk(api, "/audit-logs", "audit_logs", until=pivot)
    window = await _walk(api, "/audit-logs", "audit_logs", since=rows[5]["created_at"], until=pivot)
    assert [r["id"] for r in since] == [r["id"] for r in rows if r["created_at"] >= pivot]
    assert [r["id"] for r in until] == [r["id"] for r in rows if r["created_at"] < pivot]
    assert rows[3]["id"] in {r["id"] for r in since} - {r["id"] for r in until}
    assert [r["id"] for r in window] == [r["id"] for r in rows[4:6]]


async def test_audit_cursor_walk_is_complete_and_stable(api: AdminApi) -> None:
    for n in range(11):
        await api.create_tenant(subdomain=f"t{n}")
    everything = (await api.request("GET", "/audit-logs", params={"limit": 100})).json()
    first = (await api.request("GET", "/audit-logs", params={"limit": 5})).json()
    assert first["has_more"] and len(first["audit_logs"]) == 5
    # New activity while a client pages through must not shift what it sees next.
    await api.create_tenant(subdomain="late")
    rest = await _walk(api, "/audit-logs", "audit_logs", limit=5, cursor=first["next_cursor"])
    walked = [r["id"] for r in first["audit_logs"] + rest]
    assert walked == [r["id"] for r in everything["audit_logs"]]
    assert len(walked) == 12 and len(set(walked)) == 12  # 11 tenants + the key init
    stamps = [(r["created_at"], r["id"]) for r in everything["audit_logs"]]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    assert everything["has_more"] is False and everything["next_cursor"] is None


async def test_default_limit_is_50(api: AdminApi) -> None:
    for n in range(55):
        await api.create_tenant(subdomain=f"t{n}")
    page = (await api.request("GET", "/audit-logs")).json()
    assert len(page["audit_logs"]) == 50 and page["has_more"] is True


async def test_tenant_and_principal_lists_page_the_same_way(api: AdminApi) -> None:
    created = [(await api.create_tenant(subdomain=f"t{n}"))["tenant_id"] for n in range(5)]
    tenants = await _walk(api, "/tenants", "tenants", limit=2)
    assert [t["tenant_id"] for t in tenants] == created  # oldest first
    pids = [(await api.create_principal(created[0]))["principal_id"] for _ in range(3)]
    principals = await _walk(api, f"/tenants/{created[0]}/principals", "principals", limit=2)
    assert [p["principal_id"] for p in principals] == pids
    # A cursor belongs to its list.
    first = (await api.request("GET", "/tenants", params={"limit": 1})).json()
    misuse = await api.request("GET", "/audit-logs", params={"cursor": first["next_cursor"]})
    assert misuse.status_code == 400 and error_of(misuse)["details"]["field"] == "cursor"
