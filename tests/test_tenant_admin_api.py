"""Tenant-management API: the admin key, tenants, secret redaction and the error
envelope, through the real app over ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adcp_agent.sealing import is_sealed
from adcp_agent.services import tenant_admin, tenants
from tests.tenant_admin_support import (
    KEY_HEADER,
    PREFIX,
    SEED_TENANT_BODY,
    AdminApi,
    admin_api,
    error_of,
)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[AdminApi]:
    async with admin_api(tmp_path) as api:
        yield api


# --- the API key -------------------------------------------------------------------


async def test_init_api_key_works_once_and_the_key_is_never_shown_again(api: AdminApi) -> None:
    first = await api.client.post(f"{PREFIX}/init-api-key")
    second = await api.client.post(f"{PREFIX}/init-api-key")
    assert first.status_code == 201
    key = first.json()["api_key"]
    assert key.startswith("adcp_admin_") and len(key) > 40
    assert first.json()["header"] == KEY_HEADER
    assert second.status_code == 409
    assert error_of(second)["code"] == "CONFLICT"
    assert key not in second.text
    api.key = key
    assert (await api.request("GET", "/tenants")).status_code == 200
    # The audit trail records the init but never the key itself.
    logs = (await api.request("GET", "/audit-logs", params={"action": "admin_api_key.init"})).text
    assert "admin_api_key.init" in logs and key not in logs


async def test_missing_or_wrong_key_is_401(api: AdminApi) -> None:
    before_init = await api.client.get(f"{PREFIX}/tenants", headers={KEY_HEADER: "guess"})
    await api.init_key()
    missing = await api.client.get(f"{PREFIX}/tenants")
    wrong = await api.client.get(f"{PREFIX}/tenants", headers={KEY_HEADER: api.key + "x"})
    assert before_init.status_code == missing.status_code == wrong.status_code == 401
    assert error_of(before_init)["code"] == "AUTH_INVALID"
    assert error_of(missing)["code"] == "AUTH_REQUIRED"
    assert "init-api-key" in error_of(missing)["details"]["suggestion"]
    assert error_of(wrong)["code"] == "AUTH_INVALID"


async def test_rotating_the_key_retires_the_old_one(api: AdminApi) -> None:
    old = await api.init_key()
    refused = await api.client.post(f"{PREFIX}/api-key/rotate", headers={KEY_HEADER: "nope"})
    rotated = await api.request("POST", "/api-key/rotate")
    assert refused.status_code == 401
    assert rotated.status_code == 200
    new = rotated.json()["api_key"]
    assert new != old
    old_use = await api.client.get(f"{PREFIX}/tenants", headers={KEY_HEADER: old})
    new_use = await api.client.get(f"{PREFIX}/tenants", headers={KEY_HEADER: new})
    assert old_use.status_code == 401 and error_of(old_use)["code"] == "AUTH_INVALID"
    assert new_use.status_code == 200


async def test_health_reports_the_database_and_tenant_count(api: AdminApi) -> None:
    await api.init_key()
    await api.create_tenant(subdomain="one")
    await api.create_tenant(subdomain="two")
    response = await api.request("GET", "/health")
    unauthenticated = await api.client.get(f"{PREFIX}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "database": "connected",
        "version": "0.1.0",
        "tenants_count": 2,
    }
    assert unauthenticated.status_code == 401


# --- tenants -----------------------------------------------------------------------


async def test_the_seeds_flat_create_body_is_accepted_and_secrets_never_echo(
    api: AdminApi,
) -> None:
    await api.init_key()
    created = await api.request("POST", "/tenants", json=SEED_TENANT_BODY)
    assert created.status_code == 201, created.text
    tenant = created.json()
    assert tenant["ad_server"] == "google_ad_manager"
    assert tenant["adapter_config"] == {
        "gam_network_code": "123456789",
        "gam_refresh_token": "***",
        "fail_sync": False,
    }
    assert tenant["features"] == SEED_TENANT_BODY["features"]
    tid = tenant["tenant_id"]
    fetched = await api.request("GET", f"/tenants/{tid}")
    listed = await api.request("GET", "/tenants")
    updated = await api.request("PUT", f"/tenants/{tid}", json={"name": "Sports Pub"})
    audit = await api.request("GET", "/audit-logs", params={"tenant_id": tid})
    for response in (created, fetched, listed, updated, audit):
        assert response.status_code in (200, 201)
        assert "1//oauth-refresh-token" not in response.text
    assert fetched.json()["adapter_config"]["gam_refresh_token"] == "***"
    # The secret is stored sealed, and never shown.
    stored = await tenants.get_tenant(api.state.db, tid)
    assert stored is not None
    sealed = stored.adapter_config["gam_refresh_token"]
    assert is_sealed(sealed) and "oauth-refresh-token" not in sealed
    assert api.state.secrets.open(sealed) == "1//oauth-refresh-token"


@pytest.mark.parametrize("ad_server", ["kevel", "triton_digital"])
async def test_a_known_ad_server_without_an_installed_adapter_is_a_422(
    api: AdminApi, ad_server: str
) -> None:
    await api.init_key()
    response = await api.request(
        "POST", "/tenants", json={"name": "Radio", "subdomain": "radio", "ad_server": ad_server}
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["field"] == "ad_server"
    assert ad_server in error["message"]
    assert "mock" in error["details"]["installed_adapters"]


async def test_adapter_config_is_validated_against_the_adapters_model(api: AdminApi) -> None:
    await api.init_key()
    gam_on_mock = await api.request(
        "POST", "/tenants", json={**SEED_TENANT_BODY, "ad_server": "mock"}
    )
    unknown_server = await api.request(
        "POST", "/tenants", json={"name": "X", "subdomain": "x", "ad_server": "freewheel"}
    )
    bad_fill = await api.request(
        "POST", "/tenants", json={"name": "X", "subdomain": "x", "adapter_config": {"fill_rate": 2}}
    )
    assert gam_on_mock.status_code == 422
    assert error_of(gam_on_mock)["details"]["field"] in {
        "adapter_config.gam_network_code",
        "adapter_config.gam_refresh_token",
    }
    assert unknown_server.status_code == 422
    assert error_of(unknown_server)["details"]["field"] == "ad_server"
    assert bad_fill.status_code == 422
    assert error_of(bad_fill)["details"]["field"] == "adapter_config.fill_rate"


async def test_put_is_a_partial_update(api: AdminApi) -> None:
    await api.init_key()
    tid = (await api.create_tenant(**SEED_TENANT_BODY))["tenant_id"]
    renamed = await api.request("PUT", f"/tenants/{tid}", json={"name": "Updated Name"})
    # The seed's update body: features merge, so enable_axe_signals survives.
    budget = await api.request(
        "PUT", f"/tenants/{tid}", json={"features": {"max_daily_budget": 100000}}
    )
    # A fetched config PUT back (secrets shown as ***) keeps the stored secret.
    round_trip = await api.request(
        "PUT",
        f"/tenants/{tid}",
        json={"adapter_config": {**renamed.json()["adapter_config"], "gam_network_code": "42"}},
    )
    dropped = await api.request(
        "PUT", f"/tenants/{tid}", json={"features": {"enable_axe_signals": None}}
    )
    assert renamed.status_code == budget.status_code == round_trip.status_code == 200
    assert renamed.json()["name"] == "Updated Name"
    assert renamed.json()["features"] == SEED_TENANT_BODY["features"]
    assert budget.json()["name"] == "Updated Name"
    assert budget.json()["features"] == {"max_daily_budget": 100000, "enable_axe_signals": True}
    assert dropped.json()["features"] == {"max_daily_budget": 100000}
    stored = await tenants.get_tenant(api.state.db, tid)
    assert stored is not None
    assert stored.adapter_config["gam_network_code"] == "42"
    refresh_token = api.state.secrets.open(stored.adapter_config["gam_refresh_token"])
    assert refresh_token == "1//oauth-refresh-token"

    # Switching ad server starts a fresh config for the new adapter.
    switched = await api.request("PUT", f"/tenants/{tid}", json={"ad_server": "mock"})
    assert switched.status_code == 200
    assert switched.json()["ad_server"] == "mock"
    assert "gam_refresh_token" not in switched.json()["adapter_config"]


async def test_subdomain_and_tenant_id_clashes_are_409(api: AdminApi) -> None:
    await api.init_key()
    await api.create_tenant(subdomain="taken", tenant_id="first")
    by_subdomain = await api.request("POST", "/tenants", json={"name": "B", "subdomain": "taken"})
    by_id = await api.request(
        "POST", "/tenants", json={"name": "C", "subdomain": "free", "tenant_id": "first"}
    )
    assert by_subdomain.status_code == by_id.status_code == 409
    assert error_of(by_subdomain)["details"]["field"] == "subdomain"
    assert error_of(by_id)["details"]["field"] == "tenant_id"


async def test_soft_delete_hides_the_tenant_and_stops_its_tokens(api: AdminApi) -> None:
    await api.init_key()
    tid = (await api.create_tenant(subdomain="gone"))["tenant_id"]
    keep = (await api.create_tenant(subdomain="kept"))["tenant_id"]
    token = (await api.create_principal(tid))["access_token"]
    before = await api.mcp_result("get_products", {"brief": "sports"}, token)
    deleted = await api.request("DELETE", f"/tenants/{tid}")
    after = await api.mcp_result("get_products", {"brief": "sports"}, token)
    assert before["status"] == "completed"
    assert deleted.status_code == 200 and deleted.json()["deleted_at"] is not None
    assert [e["code"] for e in after["errors"]] == ["AUTH_INVALID"]
    assert (await api.request("GET", f"/tenants/{tid}")).status_code == 404
    assert (await api.request("DELETE", f"/tenants/{tid}")).status_code == 404
    assert (await api.request("GET", f"/tenants/{tid}/principals")).status_code == 404
    listed = (await api.request("GET", "/tenants")).json()["tenants"]
    assert [t["tenant_id"] for t in listed] == [keep]


async def test_unknown_tenant_is_404(api: AdminApi) -> None:
    await api.init_key()
    for method, path in [
        ("GET", "/tenants/nope"),
        ("PUT", "/tenants/nope"),
        ("DELETE", "/tenants/nope"),
        ("POST", "/tenants/nope/sync-inventory"),
        ("GET", "/tenants/nope/principals/p"),
    ]:
        response = await api.request(method, path, json={})
        assert response.status_code == 404, (method, path)
        assert error_of(response)["code"] == "NOT_FOUND"
        assert error_of(response)["details"]["field"] == "tenant_id"


# --- bad input ---------------------------------------------------------------------


async def test_invalid_json_is_400(api: AdminApi) -> None:
    await api.init_key()
    response = await api.request("POST", "/tenants", content=b'{"name": "x",')
    assert response.status_code == 400
    assert error_of(response)["code"] == "INVALID_REQUEST"
    assert error_of(response)["details"]["field"] == "body"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "subdomain": "x", "colour": "red"}, "colour"),
        ({"name": 42, "subdomain": "x"}, "name"),
        ({"name": "X", "subdomain": "x", "public_discovery": "yes"}, "public_discovery"),
        ({"name": "X", "subdomain": "x", "features": ["a"]}, "features"),
        ({"subdomain": "x"}, "name"),
        ({"name": "X", "subdomain": "Not Valid!"}, "subdomain"),
        (["not", "an", "object"], "body"),
    ],
)
async def test_wrong_fields_are_422_naming_the_field(
    api: AdminApi, body: object, field: str
) -> None:
    await api.init_key()
    response = await api.request("POST", "/tenants", json=body)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["field"] == field
    assert (await api.request("GET", "/tenants")).json()["tenants"] == []


async def test_update_refuses_null_for_required_fields(api: AdminApi) -> None:
    await api.init_key()
    tid = (await api.create_tenant(subdomain="nul"))["tenant_id"]
    response = await api.request("PUT", f"/tenants/{tid}", json={"name": None})
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "name"


async def test_bad_paging_parameters(api: AdminApi) -> None:
    await api.init_key()
    too_many = await api.request("GET", "/tenants", params={"limit": 101})
    not_a_number = await api.request("GET", "/tenants", params={"limit": "ten"})
    typo = await api.request("GET", "/audit-logs", params={"tenant": "demo"})
    bad_cursor = await api.request("GET", "/tenants", params={"cursor": "not-a-cursor"})
    bad_since = await api.request("GET", "/audit-logs", params={"since": "yesterday"})
    assert too_many.status_code == not_a_number.status_code == 422
    assert error_of(too_many)["details"]["field"] == "limit"
    assert typo.status_code == 422 and error_of(typo)["details"]["field"] == "tenant"
    assert bad_cursor.status_code == 400
    assert error_of(bad_cursor)["details"]["field"] == "cursor"
    assert bad_since.status_code == 422 and error_of(bad_since)["details"]["field"] == "since"


async def test_unknown_paths_and_methods_answer_in_the_envelope(api: AdminApi) -> None:
    await api.init_key()
    missing = await api.request("GET", "/tenantz")
    wrong_method = await api.request("DELETE", "/tenants")
    assert missing.status_code == 404 and error_of(missing)["code"] == "NOT_FOUND"
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET, POST"
    assert error_of(wrong_method)["code"] == "INVALID_REQUEST"


async def test_slack_webhook_urls_are_never_echoed(tmp_path: Path) -> None:
    async with admin_api(tmp_path) as api:
        await api.init_key()
        url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
        created = await api.create_tenant(
            name="Slacky",
            subdomain="slacky",
            ad_server="mock",
            features={"slack_webhook_url": url, "max_daily_budget": 5},
        )
        fetched = await api.request("GET", f"/tenants/{created['tenant_id']}")
        kept = await api.request(
            "PUT", f"/tenants/{created['tenant_id']}", json={"features": fetched.json()["features"]}
        )
        tenant = await tenant_admin.require_tenant(api.state.db, created["tenant_id"])
    assert created["features"] == {"slack_webhook_url": "***", "max_daily_budget": 5}
    assert "XXXXSECRET" not in fetched.text and "XXXXSECRET" not in kept.text
    # PUT of the redacted view kept it (sealed).
    assert api.state.secrets.open(tenant.features["slack_webhook_url"]) == url
