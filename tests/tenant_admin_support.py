"""Helpers for the tenant-management API tests: the real app over httpx's
ASGITransport (with its lifespan running), a hand-driven clock for the rate limits, and
a registry holding just the mock adapter and a fake Google Ad Manager one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
from adcp_agent_adapters.mock import MockAdapter
from pydantic import BaseModel, ConfigDict
from starlette.applications import Starlette

from adcp_agent.adapter_protocol import AdapterRegistry, Forecast, ForecastRequest, InventoryItem
from adcp_agent.config import Settings
from adcp_agent.server import create_app, prepare
from adcp_agent.state import AppState
from tests.databases import database_settings

PREFIX = "/api/v1/tenant-management"
KEY_HEADER = "X-Tenant-Management-API-Key"

# The seed's own create body (docs "Create Tenant"), verbatim.
SEED_TENANT_BODY: dict[str, Any] = {
    "name": "Sports Publisher",
    "subdomain": "sports",
    "ad_server": "google_ad_manager",
    "gam_refresh_token": "1//oauth-refresh-token",
    "gam_network_code": "123456789",
    "features": {"max_daily_budget": 50000, "enable_axe_signals": True},
}


@dataclass
class ManualClock:
    """Epoch seconds that only move when a test says so."""

    now: float = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeGamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gam_network_code: str
    gam_refresh_token: str
    fail_sync: bool = False


class FakeGamAdapter:
    """Stands in for a Google Ad Manager adapter (none ships yet); its inventory grows
    when ``FakeGamAdapter.extra_units`` is raised, like a publisher adding ad units."""

    name: ClassVar[str] = "google_ad_manager"
    config_model: ClassVar[type[BaseModel]] = FakeGamConfig
    extra_units: ClassVar[int] = 0

    def __init__(self, config: FakeGamConfig) -> None:
        self.config = config

    async def health(self) -> bool:
        return True

    async def sync_inventory(self) -> list[InventoryItem]:
        if self.config.fail_sync:
            raise ConnectionError("GAM API unreachable")
        root = f"net_{self.config.gam_network_code}"
        items = [
            InventoryItem(root, "Sports network", "network"),
            InventoryItem("au_home", "Homepage", "ad_unit", root),
            InventoryItem("au_scores", "Scores", "ad_unit", root),
            InventoryItem("pl_video", "Video placement", "placement", root),
        ]
        items += [
            InventoryItem(f"au_extra_{i}", f"Extra {i}", "ad_unit", root)
            for i in range(type(self).extra_units)
        ]
        return items

    async def forecast(self, request: ForecastRequest) -> Forecast:
        return Forecast(available_impressions=0, capacity_impressions=0)


class ChosenAdapters(AdapterRegistry):
    """A registry holding only what the test registers. Installed plugins come and go
    as adapters are written; these tests must not change meaning when one lands."""

    def _load_entry_points(self) -> None:
        self._loaded_entry_points = True


@dataclass
class AdminApi:
    client: httpx.AsyncClient
    state: AppState
    clock: ManualClock
    key: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {KEY_HEADER: self.key}

    async def init_key(self) -> str:
        response = await self.client.post(f"{PREFIX}/init-api-key")
        assert response.status_code == 201, response.text
        self.key = response.json()["api_key"]
        return self.key

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return await self.client.request(method, PREFIX + path, headers=headers, **kwargs)

    async def create_tenant(self, **body: Any) -> dict[str, Any]:
        body.setdefault("name", "Test Publisher")
        response = await self.request("POST", "/tenants", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def create_principal(self, tenant_id: str, **body: Any) -> dict[str, Any]:
        body.setdefault("name", "Test Buyer")
        response = await self.request("POST", f"/tenants/{tenant_id}/principals", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def mcp(
        self, tool: str, arguments: dict[str, Any], token: str | None = None
    ) -> httpx.Response:
        """A raw MCP ``tools/call`` over streamable HTTP, as any MCP client sends it."""
        headers = {"accept": "application/json, text/event-stream"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        return await self.client.post(
            "/mcp/",
            headers=headers,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            },
        )

    async def mcp_result(self, tool: str, arguments: dict[str, Any], token: str) -> dict[str, Any]:
        response = await self.mcp(tool, arguments, token)
        assert response.status_code == 200, response.text
        return response.json()["result"]["structuredContent"]


@asynccontextmanager
async def admin_api(tmp_path: Path, **overrides: Any) -> AsyncIterator[AdminApi]:
    """The real app (its lifespan included, as uvicorn would run it) on a fresh database
    (an SQLite file or Postgres, per the test's backend), with the fake GAM adapter
    registered and the rate-limit clock in hand."""
    settings = Settings(
        data_dir=tmp_path, seed_demo=False, **database_settings(tmp_path), **overrides
    )
    state = AppState.from_settings(settings)
    state.registry = ChosenAdapters()
    state.registry.register("mock", MockAdapter)
    state.registry.register("google_ad_manager", FakeGamAdapter)  # type: ignore[arg-type]
    FakeGamAdapter.extra_units = 0
    clock = ManualClock()
    app = create_app(state, startup=await prepare(state), clock=clock)
    async with _lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield AdminApi(client=client, state=state, clock=clock)


@dataclass
class ServedApp:
    http: httpx.AsyncClient
    state: AppState
    app: Starlette


@asynccontextmanager
async def served_app(
    settings: Settings, *, base_url: str = "http://127.0.0.1:8000", **client: Any
) -> AsyncIterator[ServedApp]:
    """The real app on ``settings`` (prepared as ``serve`` prepares it, its lifespan
    running), and an httpx client for it in-process (``client``: headers, ...)."""
    state = AppState.from_settings(settings)
    app = create_app(state, startup=await prepare(state))
    try:
        async with _lifespan(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=base_url, **client) as c:
                yield ServedApp(c, state, app)
    finally:
        await state.db.dispose()


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    """Run the app's lifespan in a task of its own: the MCP session manager's task group
    must be left by the task that entered it, and pytest-asyncio may tear a fixture
    down from another task than the one that set it up."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await stop.wait()

    task = asyncio.create_task(run())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # start-up failed: raise its error here
    try:
        yield
    finally:
        stop.set()
        await task


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]
