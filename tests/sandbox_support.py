"""A server for the test-controller tests: a sandbox tenant (``features.sandbox``) with
the demo catalog, a publisher whose ad server records every call it receives, and the
demo tenant whose buyer has no sandbox account. The clock is simulated and never moves,
so flights, statuses and delivery figures are exact."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from adcp_agent_adapters.mock import MockAdapter

from adcp_agent import demo_catalog
from adcp_agent.adapter_protocol import OrderResult, OrderSpec
from adcp_agent.config import Settings
from adcp_agent.services import catalog_admin, tenants
from adcp_agent.state import AppState
from tests.databases import Backend, database_settings, per_backend
from tests.media_helpers import key
from tests.support import DEMO_TOKEN, ServerThread, ToolCall, assert_valid, call, free_port

SIM_NOW = datetime(2031, 6, 2, 12, tzinfo=UTC)
SBX_TOKEN = "adcp_test_sandbox_buyer_token_0123456789"
SBX_OTHER_TOKEN = "adcp_test_sandbox_other_token_012345678"
PROD_SBX_TOKEN = "adcp_test_demo_buyer_with_sandbox_01234"
REC_TOKEN = "adcp_test_recording_pub_buyer_012345678"
REC_MAPPINGS = {"gam_advertiser_id": "5551", "kevel_advertiser_id": 9}
SANDBOX = {"sandbox": True}
CONTROLLER = "comply_test_controller"


class RecordingAdapter(MockAdapter):
    """A "real" ad server that notes every call: sandbox traffic must never reach it."""

    name: ClassVar[str] = "recording"
    calls: ClassVar[list[str]] = []
    orders: ClassVar[list[OrderSpec]] = []  # what create_order was asked to book

    async def create_order(self, spec: OrderSpec) -> OrderResult:
        RecordingAdapter.orders.append(spec)
        return await super().create_order(spec)

    def __getattribute__(self, attr: str) -> Any:
        value = super().__getattribute__(attr)
        if callable(value) and not attr.startswith("_"):
            RecordingAdapter.calls.append(attr)
        return value


async def _setup(state: AppState) -> None:
    catalog = {
        "formats": demo_catalog.FORMATS,
        "properties": demo_catalog.PROPERTIES,
        "products": demo_catalog.PRODUCTS,
        "signals": demo_catalog.SIGNALS,
    }
    await tenants.create_tenant(
        state.db,
        state.registry,
        name="Sandbox Pub",
        subdomain="sbx",
        tenant_id="sbx",
        features={"sandbox": True},
    )
    await catalog_admin.load_catalog(state.db, "sbx", **catalog)
    await tenants.create_principal(
        state.db, tenant_id="sbx", name="Runner", token=SBX_TOKEN, principal_id="sbx_runner"
    )
    await tenants.create_principal(
        state.db, tenant_id="sbx", name="Other", token=SBX_OTHER_TOKEN, principal_id="sbx_other"
    )
    await tenants.create_principal(
        state.db, tenant_id="demo", name="Tester", token=PROD_SBX_TOKEN, principal_id="demo_sbx"
    )
    state.registry.register("recording", RecordingAdapter)
    await tenants.create_tenant(
        state.db,
        state.registry,
        name="Recording Pub",
        subdomain="rec",
        tenant_id="rec",
        ad_server="recording",
    )
    await catalog_admin.load_catalog(state.db, "rec", **catalog)
    await tenants.create_principal(
        state.db,
        tenant_id="rec",
        name="Rec buyer",
        token=REC_TOKEN,
        principal_id="rec_buyer",
        platform_mappings=REC_MAPPINGS,
    )


@dataclass
class SandboxServer:
    base_url: str
    settings: Settings

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp/"


def _start(data_dir: Path, backend: Backend) -> tuple[ServerThread, SandboxServer]:
    port = free_port()
    settings = Settings(
        data_dir=data_dir,
        port=port,
        demo_token=DEMO_TOKEN,
        sim_clock=True,
        sim_clock_start=SIM_NOW,
        **database_settings(data_dir, backend),  # type: ignore[arg-type]
    )
    thread = ServerThread(settings, setup=_setup)
    thread.start()
    return thread, SandboxServer(f"http://127.0.0.1:{port}", settings)


def _sbx(factory: pytest.TempPathFactory, backend: Backend) -> Iterator[SandboxServer]:
    thread, server = _start(factory.mktemp(f"sandbox_{backend}"), backend)
    yield server
    thread.stop()


# One sandbox server per test module and backend.
sbx, sbx_sqlite, sbx_postgres = per_backend("sbx", _sbx)


async def control(
    client: Any, scenario: str, params: dict[str, Any] | None = None, **extra: Any
) -> ToolCall:
    """One controller call; every answer (success or failure) must be schema-valid."""
    args: dict[str, Any] = {"scenario": scenario, "account": SANDBOX, **extra}
    if params is not None:
        args["params"] = params
    result = await call(client, CONTROLLER, args)
    assert not result.is_error, result.data
    assert_valid(CONTROLLER, result.data)
    return result


def flight(days_ahead: int = 3, days: int = 14) -> tuple[str, str]:
    start = SIM_NOW + timedelta(days=days_ahead)
    return start.isoformat(), (start + timedelta(days=days)).isoformat()


def ng_buy(budget: float = 5000, **extra: Any) -> dict[str, Any]:
    """A non-guaranteed run-of-site buy starting in three days."""
    start, end = flight()
    return {
        "brand": {"domain": "acme.example"},
        "start_time": start,
        "end_time": end,
        "idempotency_key": key("sbx"),
        "packages": [
            {"product_id": "display_run_of_site", "pricing_option_id": "ros_auction",
             "bid_price": 4.0, "budget": budget}
        ],
        **extra,
    }  # fmt: skip
