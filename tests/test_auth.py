"""Authentication and tenant isolation over real streamable HTTP."""

from __future__ import annotations

import pytest

from tests.conftest import OTHER_TOKEN, PRIVATE_TOKEN
from tests.support import DEMO_TOKEN, LiveServer, assert_valid, call, mcp_client


def _ids(result) -> set[str]:
    return {p["product_id"] for p in result.data["products"]}


@pytest.mark.parametrize("header", ["authorization", "x-adcp-auth"])
async def test_both_auth_headers_authenticate(live: LiveServer, header: str) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN, header=header) as client:
        result = await call(client, "get_products", {"buying_mode": "wholesale"})
    assert not result.is_error
    assert_valid("get_products", result.data)
    # The private upfront deal is only shown to authenticated buyers.
    assert "ctv_private_upfront" in _ids(result)
    assert result.data["cache_scope"] == "account"


async def test_anonymous_discovery_sees_only_public_products(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url) as client:
        result = await call(client, "get_products", {"buying_mode": "wholesale"})
    assert not result.is_error
    assert_valid("get_products", result.data)
    ids = _ids(result)
    assert "ctv_sports_premium" in ids
    assert "ctv_private_upfront" not in ids
    assert result.data["cache_scope"] == "public"


async def test_missing_token_is_refused_for_mutations(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url) as client:
        result = await call(
            client, "activate_signal", {"signal_agent_segment_id": "auto_intenders"}
        )
    assert result.is_error
    assert result.error_codes == ["AUTH_REQUIRED"]
    assert "Bearer" in result.error["suggestion"]
    assert_valid("activate_signal", result.data)


@pytest.mark.parametrize("header", ["authorization", "x-adcp-auth"])
async def test_bad_token_is_invalid_even_for_discovery(live: LiveServer, header: str) -> None:
    async with mcp_client(live.mcp_url, "adcp_not_a_real_token_at_all_000000", header) as client:
        result = await call(client, "get_products", {"brief": "sports"})
    assert result.is_error
    assert result.error_codes == ["AUTH_INVALID"]
    assert result.error["recovery"] == "terminal"
    assert_valid("get_products", result.data)


async def test_malformed_authorization_header_is_not_a_token(live: LiveServer) -> None:
    async with mcp_client(
        live.mcp_url, extra_headers={"authorization": "Basic dXNlcjpwYXNz"}
    ) as client:
        result = await call(client, "activate_signal", {"signal_agent_segment_id": "x"})
    assert result.error_codes == ["AUTH_REQUIRED"]


async def test_tenants_never_see_each_others_catalog(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, OTHER_TOKEN) as client:
        other = await call(client, "get_products", {"brief": "sports"})
        other_signals = await call(client, "get_signals", {"signal_spec": "sports fans"})
        cross = await call(
            client, "activate_signal", {"signal_agent_segment_id": "sports_enthusiasts"}
        )
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        demo = await call(client, "get_products", {"brief": "sports drive time radio"})
    assert _ids(other) == {"harbor_drive_time"}
    assert {s["signal_agent_segment_id"] for s in other_signals.data["signals"]} == {
        "harbor_commuters"
    }
    # Another tenant's signal id does not exist for this caller: not found, not leaked.
    assert cross.error_codes == ["SIGNAL_NOT_FOUND"]
    assert "harbor_drive_time" not in _ids(demo)


async def test_anonymous_tenant_selection_and_closed_tenants(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, extra_headers={"x-adcp-tenant": "harbor"}) as client:
        harbor = await call(client, "get_products", {"buying_mode": "wholesale"})
    async with mcp_client(live.mcp_url, extra_headers={"x-adcp-tenant": "closed"}) as client:
        closed = await call(client, "get_products", {"buying_mode": "wholesale"})
    async with mcp_client(live.mcp_url, PRIVATE_TOKEN) as client:
        closed_auth = await call(client, "get_products", {"buying_mode": "wholesale"})
    assert _ids(harbor) == {"harbor_drive_time"}
    assert closed.error_codes == ["AUTH_REQUIRED"]
    # Authenticated, the closed tenant answers (with its own, empty, catalog).
    assert not closed_auth.is_error and closed_auth.data["products"] == []


async def test_unknown_tenant_header_is_auth_required(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, extra_headers={"x-adcp-tenant": "nope"}) as client:
        result = await call(client, "get_products", {"brief": "sports"})
    assert result.error_codes == ["AUTH_REQUIRED"]
