"""Buyer accounts over streamable HTTP: listing, provisioning, resolution errors."""

from __future__ import annotations

from adcp_agent.db.engine import create_database
from adcp_agent.services import accounts as account_service
from tests.conftest import OTHER_TOKEN
from tests.support import DEMO_TOKEN, LiveServer, assert_valid, call, mcp_client

KEY = "sync-accounts-0000000001"


async def _set_status(live: LiveServer, tenant: str, account_id: str, status: str) -> None:
    db = create_database(live.settings.resolved_database_url())
    try:
        await account_service.set_status(db, tenant, account_id, status)
    finally:
        await db.dispose()


async def test_principal_lists_its_default_account(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        result = await call(client, "list_accounts")
        none_sandbox = await call(client, "list_accounts", {"sandbox": True, "status": "closed"})
    assert not result.is_error
    assert_valid("list_accounts", result.data)
    default = [a for a in result.data["accounts"] if a["name"] == "Demo Buyer Agency (default)"]
    assert len(default) == 1 and default[0]["status"] == "active"
    assert none_sandbox.data["accounts"] == []


async def test_sync_accounts_provisions_idempotently_and_dry_runs(live: LiveServer) -> None:
    entry = {
        "brand": {"domain": "fizzwater.example"},
        "operator": "northstar.example",
        "billing": "operator",
        "payment_terms": "net_30",
    }
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        dry = await call(
            client,
            "sync_accounts",
            {"accounts": [{**entry, "brand": {"domain": "dry.example"}}], "dry_run": True},
        )
        first = await call(client, "sync_accounts", {"accounts": [entry], "idempotency_key": KEY})
        again = await call(client, "sync_accounts", {"accounts": [entry], "idempotency_key": KEY})
        update = await call(
            client,
            "sync_accounts",
            {
                "accounts": [
                    {
                        "account": {"account_id": first.data["accounts"][0]["account_id"]},
                        "payment_terms": "net_60",
                    }
                ]
            },
        )
        listed = await call(client, "list_accounts")
        by_key = await call(
            client,
            "get_products",
            {
                "brief": "sports",
                "account": {
                    "brand": {"domain": "fizzwater.example"},
                    "operator": "northstar.example",
                },
            },
        )
    for r in (dry, first, again, update):
        assert not r.is_error, r.data
        assert_valid("sync_accounts", r.data)
    assert dry.data["accounts"][0]["action"] == "created"
    assert first.data["accounts"][0]["action"] == "created"
    assert first.data["accounts"][0]["status"] == "active"
    assert again.data["accounts"][0]["action"] == "unchanged"
    assert again.data["accounts"][0]["account_id"] == first.data["accounts"][0]["account_id"]
    assert update.data["accounts"][0]["action"] == "updated"
    names = {a.get("brand", {}).get("domain") for a in listed.data["accounts"]}
    assert "fizzwater.example" in names and "dry.example" not in names
    assert not by_key.is_error


async def test_manual_approval_tenant_returns_pending_and_blocks_use(live: LiveServer) -> None:
    entry = {
        "brand": {"domain": "harborbrand.example"},
        "operator": "harborbrand.example",
        "billing": "advertiser",
    }
    async with mcp_client(live.mcp_url, OTHER_TOKEN) as client:
        created = await call(client, "sync_accounts", {"accounts": [entry]})
        account_id = created.data["accounts"][0]["account_id"]
        blocked = await call(
            client, "get_products", {"brief": "sports", "account": {"account_id": account_id}}
        )
        await _set_status(live, "harbor", account_id, "active")
        allowed = await call(
            client, "get_products", {"brief": "sports", "account": {"account_id": account_id}}
        )
        await _set_status(live, "harbor", account_id, "suspended")
        suspended = await call(
            client,
            "activate_signal",
            {"signal_agent_segment_id": "harbor_commuters", "account": {"account_id": account_id}},
        )
    assert created.data["accounts"][0]["status"] == "pending_approval"
    assert created.data["accounts"][0]["setup"]["message"]
    assert blocked.error_codes == ["ACCOUNT_SETUP_REQUIRED"]
    assert blocked.error["field"] == "account"
    assert not allowed.is_error
    assert suspended.error_codes == ["ACCOUNT_SUSPENDED"]
    assert_valid("get_products", blocked.data)
    assert_valid("activate_signal", suspended.data)


async def test_resolution_errors_and_no_cross_principal_leak(live: LiveServer) -> None:
    brand = {"domain": "twin.example"}
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        await call(
            client,
            "sync_accounts",
            {
                "accounts": [
                    {"brand": brand, "operator": "twin.example", "billing": "operator"},
                    {
                        "brand": brand,
                        "operator": "twin.example",
                        "billing": "operator",
                        "sandbox": True,
                    },
                ]
            },
        )
        ambiguous = await call(
            client,
            "get_products",
            {"brief": "sports", "account": {"brand": brand, "operator": "twin.example"}},
        )
        exact = await call(
            client,
            "get_products",
            {
                "brief": "sports",
                "account": {"brand": brand, "operator": "twin.example", "sandbox": True},
            },
        )
        unknown = await call(
            client, "get_products", {"brief": "sports", "account": {"account_id": "acc_nope"}}
        )
        mine = await call(client, "list_accounts")
    demo_account = mine.data["accounts"][0]["account_id"]
    async with mcp_client(live.mcp_url, OTHER_TOKEN) as client:
        foreign = await call(
            client, "get_products", {"brief": "sports", "account": {"account_id": demo_account}}
        )
        other_list = await call(client, "list_accounts")
    assert ambiguous.error_codes == ["ACCOUNT_AMBIGUOUS"]
    assert len(ambiguous.error["details"]["account_ids"]) == 2
    assert not exact.is_error
    assert unknown.error_codes == ["ACCOUNT_NOT_FOUND"]
    assert unknown.error["field"] == "account.account_id"
    # Another buyer's account id is simply not found: no hint that it exists.
    assert foreign.error_codes == ["ACCOUNT_NOT_FOUND"]
    assert foreign.error["message"] == unknown.error["message"].replace("acc_nope", demo_account)
    assert demo_account not in {a["account_id"] for a in other_list.data["accounts"]}


async def test_sync_accounts_rejects_bad_entries_with_fields(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        missing = await call(client, "sync_accounts", {"accounts": [{"operator": "x.example"}]})
        bad_terms = await call(
            client,
            "sync_accounts",
            {
                "accounts": [
                    {
                        "brand": {"domain": "ok.example"},
                        "operator": "ok.example",
                        "billing": "agent",
                        "payment_terms": "net_1000",
                    },
                ]
            },
        )
        short_key = await call(
            client,
            "sync_accounts",
            {
                "accounts": [
                    {"brand": {"domain": "a.example"}, "operator": "a.example", "billing": "agent"}
                ],
                "idempotency_key": "short",
            },
        )
    assert missing.error_codes == ["INVALID_REQUEST"]
    assert missing.error["field"] == "accounts[0]"
    assert bad_terms.error["field"] == "accounts[0].payment_terms"
    assert short_key.error["field"] == "idempotency_key"
    for r in (missing, bad_terms, short_key):
        assert_valid("sync_accounts", r.data)


async def test_sandbox_accounts_never_reach_the_real_ad_server(live: LiveServer) -> None:
    """A Kevel tenant: its sandbox account books on the mock engine, so no request can
    leave for Kevel (which would need the network)."""
    from sqlmodel import select

    from adcp_agent import demo_catalog
    from adcp_agent.db.models_media import MediaBuy
    from adcp_agent.services import catalog_admin, tenants
    from adcp_agent.state import AppState
    from tests.media_helpers import non_guaranteed

    db = create_database(live.settings.resolved_database_url())
    token = "adcp_test_kevel_sandbox_token_00000000"
    try:
        server = AppState.from_settings(live.settings)  # (its registry, its key)
        await tenants.create_tenant(
            db,
            server.registry,
            name="Kevel pub",
            subdomain="kevelpub",
            tenant_id="kevelpub",
            ad_server="kevel",
            adapter_config={"network_id": 1, "api_key": "not-a-real-key"},
            box=server.secrets,
        )
        await catalog_admin.load_catalog(
            db,
            "kevelpub",
            formats=demo_catalog.FORMATS,
            properties=demo_catalog.PROPERTIES,
            products=demo_catalog.PRODUCTS,
            signals=demo_catalog.SIGNALS,
        )
        await tenants.create_principal(db, tenant_id="kevelpub", name="K", token=token)
    finally:
        await db.dispose()
    async with mcp_client(live.mcp_url, token) as client:
        synced = await call(
            client,
            "sync_accounts",
            {
                "accounts": [
                    {
                        "brand": {"domain": "acme.example"},
                        "operator": "acme.example",
                        "billing": "advertiser",
                        "sandbox": True,
                    }
                ]
            },
        )
        account_id = synced.data["accounts"][0]["account_id"]
        created = await call(
            client,
            "create_media_buy",
            {**non_guaranteed(budget=1000), "account": {"account_id": account_id}},
        )
    assert not created.is_error, created.data
    db = create_database(live.settings.resolved_database_url())
    try:
        async with db.session() as session:
            buy = await session.get(MediaBuy, created.data["media_buy_id"])
            others = (
                await session.exec(select(MediaBuy).where(MediaBuy.tenant_id == "kevelpub"))
            ).all()
    finally:
        await db.dispose()
    assert buy is not None and buy.sandbox and buy.ad_server == "mock"
    assert buy.external_order_id.startswith("mock_order_")
    assert len(others) == 1
