"""Delivery test helpers: a live server on a simulated clock (and the admin call that
moves it), a publisher whose ad server reports delivery itself, and a stand-in for the
creative workflow that writes approved, pushed creatives straight into the tables."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from adcp_agent_adapters.mock import MockAdapter
from sqlmodel import select

from adcp_agent.adapter_protocol import DeliveryRow
from adcp_agent.config import Settings
from adcp_agent.db.engine import create_database
from adcp_agent.db.models_creatives import Creative, CreativeAssignment
from adcp_agent.db.models_media import MediaBuy, Package
from adcp_agent.services import catalog_admin, tenants
from adcp_agent.state import AppState
from tests.databases import Backend, database_settings, per_backend
from tests.support import DEMO_TOKEN, ServerThread, free_port

# Far from the wall clock on purpose: nothing may depend on real time.
SIM_START = datetime(2031, 3, 3, tzinfo=UTC)
SECOND_BUYER_TOKEN = "adcp_test_delivery_second_buyer_012345"
AD_OPS_TOKEN = "adcp_test_delivery_ad_ops_admin_0123456"
REPORTING_TOKEN = "adcp_test_delivery_reporting_buyer_0123"
ADMIN = "/api/v1/tenant-management"
KEY_HEADER = "X-Tenant-Management-API-Key"
_keys = itertools.count(1)


def key(prefix: str = "dlv") -> str:
    return f"{prefix}-{next(_keys):06d}-0123456789"


class ReportingMockAdapter(MockAdapter):
    """A "real" ad server for the adapter path: every line reports 10,000 impressions,
    20 clicks and 40.00 spent on each day asked about."""

    name: ClassVar[str] = "reporting_mock"

    async def get_delivery(
        self, external_order_id: str, start: date, end: date
    ) -> list[DeliveryRow]:
        order = self._order(external_order_id)
        rows, day = [], start
        while day <= end:
            rows += [DeliveryRow(line, day, 10_000, 20, 0, 40.0) for line in order.lines]
            day += timedelta(days=1)
        return rows


async def _setup(state: AppState) -> None:
    await tenants.create_principal(
        state.db,
        tenant_id="demo",
        name="Second buyer",
        token=SECOND_BUYER_TOKEN,
        principal_id="dlv_second",
    )
    await tenants.create_principal(
        state.db, tenant_id="demo", name="Ad ops", token=AD_OPS_TOKEN, role="admin"
    )
    state.registry.register("reporting_mock", ReportingMockAdapter)
    await tenants.create_tenant(
        state.db,
        state.registry,
        name="Reporting Pub",
        subdomain="reporting",
        tenant_id="reporting",
        ad_server="reporting_mock",
    )
    await catalog_admin.load_catalog(
        state.db,
        "reporting",
        formats=[
            {"format_id": "display_300x250", "name": "MREC", "kind": "display",
             "width": 300, "height": 250, "mime_types": ["image/png"]}
        ],
        properties=[
            {"property_id": "rp_web", "property_type": "website", "name": "Reporting Web",
             "publisher_domain": "reporting.example",
             "identifiers": [{"type": "domain", "value": "reporting.example"}]}
        ],
        products=[
            {"product_id": "rp_display", "name": "Reporting display",
             "description": "Banners.", "channels": ["display"],
             "delivery_type": "non_guaranteed", "format_ids": ["display_300x250"],
             "property_ids": ["rp_web"], "countries": ["US"],
             "pricing_options": [{"pricing_option_id": "rp_cpm", "floor_price": 2.0}]}
        ],
    )  # fmt: skip
    await tenants.create_principal(
        state.db, tenant_id="reporting", name="Reporting buyer", token=REPORTING_TOKEN
    )


@dataclass
class SimServer:
    base_url: str
    settings: Settings
    admin_key: str

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp/"

    async def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {KEY_HEADER: self.admin_key, **kwargs.pop("headers", {})}
        async with httpx.AsyncClient(base_url=self.base_url + ADMIN) as http:
            return await http.request(method, path, headers=headers, **kwargs)

    async def now(self) -> datetime:
        response = await self.admin("GET", "/clock")
        assert response.status_code == 200, response.text
        return datetime.fromisoformat(response.json()["now"])

    async def advance(self, hours: float) -> dict[str, Any]:
        response = await self.admin("POST", "/clock/advance", json={"hours": hours})
        assert response.status_code == 200, response.text
        return response.json()


def start_sim_server(
    data_dir: Path, restart_of: Settings | None = None, backend: Backend | None = None
) -> tuple[ServerThread, SimServer]:
    """A new installation (on ``backend``, by default this test's database), or with
    ``restart_of`` the same data dir and database again, as after a restart."""
    database = (
        database_settings(data_dir, backend)
        if restart_of is None
        else {"DATABASE_URL": restart_of.resolved_database_url()}
    )
    port = free_port()
    settings = Settings(
        data_dir=data_dir,
        port=port,
        demo_token=DEMO_TOKEN,
        sim_clock=True,
        sim_clock_start=SIM_START,
        **database,  # type: ignore[arg-type]
    )
    thread = ServerThread(settings, setup=_setup if restart_of is None else None)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    return thread, SimServer(base, settings, "")


def _sim(factory: pytest.TempPathFactory, backend: Backend) -> Iterator[SimServer]:
    thread, server = start_sim_server(factory.mktemp(f"sim_{backend}"), backend=backend)
    init_admin_key(server)
    yield server
    thread.stop()


# One simulated-clock server per test module and backend. The clock is shared: every
# test builds its buys from the clock's current time and moves it forward only.
sim, sim_sqlite, sim_postgres = per_backend("sim", _sim)


def init_admin_key(server: SimServer) -> None:
    response = httpx.post(f"{server.base_url}{ADMIN}/init-api-key")
    assert response.status_code == 201, response.text
    server.admin_key = response.json()["api_key"]


def buy_args(
    now: datetime, packages: list[dict[str, Any]], hours: int = 96, **extra: Any
) -> dict[str, Any]:
    """A create_media_buy starting now ('asap') and running ``hours``."""
    return {
        "brand": {"domain": "acme.example"},
        "start_time": "asap",
        "end_time": (now + timedelta(hours=hours)).isoformat(),
        "idempotency_key": key(),
        "packages": packages,
        **extra,
    }


def ros(budget: float = 2000, bid: float = 4.0, **extra: Any) -> dict[str, Any]:
    """A run-of-site display auction package."""
    return {"product_id": "display_run_of_site", "pricing_option_id": "ros_auction",
            "bid_price": bid, "budget": budget, **extra}  # fmt: skip


async def approve_and_push_creatives_directly(settings: Settings, media_buy_id: str) -> None:
    """Stand-in for sync_creatives + review + push: one approved creative per package,
    assignment already on the ad server — the state in which a package may serve."""
    db = create_database(settings.resolved_database_url())
    try:
        async with db.transaction() as session:
            buy = await session.get(MediaBuy, media_buy_id)
            assert buy is not None
            packages = (
                await session.exec(select(Package).where(Package.media_buy_id == media_buy_id))
            ).all()
            for package in packages:
                creative = Creative(
                    tenant_id=buy.tenant_id,
                    principal_id=buy.principal_id,
                    account_id=buy.account_id,
                    creative_id=f"cr_{package.package_id}",
                    name="Test banner",
                    format_id=package.format_ids[0],
                    kind="display",
                    status="approved",
                    content_hash="0" * 64,
                )
                session.add(creative)
                await session.flush()
                assert creative.id is not None
                session.add(
                    CreativeAssignment(
                        tenant_id=buy.tenant_id,
                        creative_pk=creative.id,
                        package_id=package.package_id,
                        pushed=True,
                    )
                )
    finally:
        await db.dispose()
