"""The admin workflow as a publisher runs it with curl against a real server on
127.0.0.1: init the key, create a tenant and a buyer, the buyer uses MCP, rotate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adcp_agent.config import Settings
from tests.databases import database_settings
from tests.support import LiveServer, ServerThread, call, free_port, mcp_client

BASE = "/api/v1/tenant-management"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir: Path = tmp_path_factory.mktemp("tenant_admin_live")
    settings = Settings(
        data_dir=data_dir, port=free_port(), seed_demo=False, **database_settings(data_dir)
    )
    thread = ServerThread(settings)
    thread.start()
    yield LiveServer(f"http://127.0.0.1:{settings.port}", data_dir, settings)
    thread.stop()


async def test_publisher_admin_workflow_over_http(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url + BASE, timeout=10) as curl:
        # curl -X POST .../init-api-key
        init = await curl.post("/init-api-key")
        assert init.status_code == 201, init.text
        assert init.headers["x-ratelimit-limit"] == "100"
        key = {"X-Tenant-Management-API-Key": init.json()["api_key"]}

        # curl -H "X-Tenant-Management-API-Key: ..." -d '{...}' .../tenants
        # (curl -d labels the body as a form; the API reads it as JSON anyway)
        tenant = await curl.post(
            "/tenants",
            headers={**key, "content-type": "application/x-www-form-urlencoded"},
            content=b'{"name": "Sports Publisher", "subdomain": "sports"}',
        )
        assert tenant.status_code == 201, tenant.text
        tid = tenant.json()["tenant_id"]

        principal = await curl.post(
            f"/tenants/{tid}/principals", headers=key, json={"name": "Acme Advertiser"}
        )
        assert principal.status_code == 201, principal.text
        pid, token = principal.json()["principal_id"], principal.json()["access_token"]

    async with mcp_client(server.mcp_url, token) as client:
        products = await call(client, "get_products", {"brief": "sports video"})
    assert not products.is_error and products.data["status"] == "completed"

    async with httpx.AsyncClient(base_url=server.base_url + BASE, timeout=10) as curl:
        rotated = await curl.post(f"/tenants/{tid}/principals/{pid}/rotate-token", headers=key)
        assert rotated.status_code == 200, rotated.text
        new_token = rotated.json()["access_token"]

    async with mcp_client(server.mcp_url, token, header="x-adcp-auth") as client:
        old = await call(client, "get_products", {"brief": "sports video"})
    async with mcp_client(server.mcp_url, new_token) as client:
        new = await call(client, "get_products", {"brief": "sports video"})
    assert old.is_error and old.error_codes == ["AUTH_INVALID"]
    assert not new.is_error
