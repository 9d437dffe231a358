from __future__ import annotations

from collections.abc import Iterator

import pytest

from adcp_agent.config import Settings
from adcp_agent.services import catalog_admin, tenants
from adcp_agent.state import AppState
from tests.support import DEMO_TOKEN, LiveServer, ServerThread, free_port

OTHER_TOKEN = "adcp_test_other_tenant_token_abcdef0123"
PRIVATE_TOKEN = "adcp_test_private_tenant_token_abcdef01"
ADMIN_TOKEN = "adcp_test_demo_admin_token_0123456789ab"
SECOND_TOKEN = "adcp_test_demo_second_buyer_token_01234"


async def _second_tenants(state: AppState) -> dict[str, str]:
    """A second publisher (public discovery on) and a third that forbids anonymous use."""
    other = await tenants.create_tenant(
        state.db,
        state.registry,
        name="Harbor Radio",
        subdomain="harbor",
        tenant_id="harbor",
        features={"account_approval": "manual"},
    )
    await catalog_admin.load_catalog(
        state.db,
        other.tenant_id,
        formats=[
            {
                "format_id": "audio_15s",
                "name": "Audio 15s",
                "kind": "audio",
                "durations_s": [15],
                "mime_types": ["audio/mpeg"],
            }
        ],
        properties=[
            {
                "property_id": "harbor_fm",
                "property_type": "radio",
                "name": "Harbor FM",
                "publisher_domain": "harborradio.example",
                "identifiers": [{"type": "station_id", "value": "WHBR"}],
            }
        ],
        products=[
            {
                "product_id": "harbor_drive_time",
                "name": "Harbor FM Drive Time Sports",
                "description": "Morning drive-time sports talk audio spots.",
                "channels": ["radio"],
                "delivery_type": "non_guaranteed",
                "format_ids": ["audio_15s"],
                "property_ids": ["harbor_fm"],
                "pricing_options": [{"pricing_option_id": "harbor_cpm", "floor_price": 4.0}],
            }
        ],
        signals=[
            {
                "signal_id": "harbor_commuters",
                "name": "Harbor Commuters",
                "description": "Morning commuters",
                "signal_type": "audience",
            }
        ],
    )
    await tenants.create_principal(
        state.db,
        tenant_id="harbor",
        name="Harbor buyer",
        token=OTHER_TOKEN,
        principal_id="harbor_buyer",
    )
    await tenants.create_tenant(
        state.db,
        state.registry,
        name="Closed Pub",
        subdomain="closed",
        tenant_id="closed",
        public_discovery=False,
    )
    await tenants.create_principal(
        state.db,
        tenant_id="closed",
        name="Closed buyer",
        token=PRIVATE_TOKEN,
    )
    await tenants.create_principal(
        state.db, tenant_id="demo", name="Riverside ad ops", token=ADMIN_TOKEN,
        principal_id="demo_admin", role="admin",
    )
    await tenants.create_principal(
        state.db, tenant_id="demo", name="Second buyer", token=SECOND_TOKEN,
        principal_id="demo_second",
    )
    return {"other": "harbor", "closed": "closed"}


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the session: the demo tenant plus two more publishers."""
    data_dir = tmp_path_factory.mktemp("live")
    port = free_port()
    settings = Settings(data_dir=data_dir, port=port, demo_token=DEMO_TOKEN)
    thread = ServerThread(settings, setup=_second_tenants)
    thread.start()
    yield LiveServer(f"http://127.0.0.1:{port}", data_dir, settings)
    thread.stop()
