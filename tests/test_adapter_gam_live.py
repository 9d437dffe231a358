"""Opt-in: the GAM adapter against a real Google Ad Manager network (read-only calls).

Runs only when GAM_LIVE_NETWORK_CODE and credentials are in the environment:
GAM_LIVE_SERVICE_ACCOUNT_JSON (the key file's content), or GAM_LIVE_CLIENT_ID,
GAM_LIVE_CLIENT_SECRET and GAM_LIVE_REFRESH_TOKEN. GAM_LIVE_TRAFFICKER_ID is optional.
Nothing is booked: it checks the credentials reach the network and lists inventory."""

from __future__ import annotations

import os

import pytest

from adcp_agent.adapter_protocol import AdapterRegistry

OAUTH_VARS = ("GAM_LIVE_CLIENT_ID", "GAM_LIVE_CLIENT_SECRET", "GAM_LIVE_REFRESH_TOKEN")
HAS_CREDENTIALS = bool(os.environ.get("GAM_LIVE_SERVICE_ACCOUNT_JSON")) or all(
    os.environ.get(v) for v in OAUTH_VARS
)

pytestmark = [
    pytest.mark.skipif(
        not (os.environ.get("GAM_LIVE_NETWORK_CODE") and HAS_CREDENTIALS),
        reason="set GAM_LIVE_NETWORK_CODE and GAM_LIVE_* credentials to test a real network",
    ),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def live_config() -> dict[str, object]:
    config: dict[str, object] = {
        "network_code": os.environ["GAM_LIVE_NETWORK_CODE"],
        "trafficker_id": int(os.environ.get("GAM_LIVE_TRAFFICKER_ID", "1")),
        "network_timezone": os.environ.get("GAM_LIVE_TIMEZONE", "America/New_York"),
    }
    if os.environ.get("GAM_LIVE_SERVICE_ACCOUNT_JSON"):
        config["service_account_json_env"] = "GAM_LIVE_SERVICE_ACCOUNT_JSON"
    else:
        config.update(
            client_id_env="GAM_LIVE_CLIENT_ID",
            client_secret_env="GAM_LIVE_CLIENT_SECRET",
            refresh_token_env="GAM_LIVE_REFRESH_TOKEN",
        )
    return config


async def test_live_network_is_reachable_and_lists_inventory() -> None:
    adapter = AdapterRegistry().create("google_ad_manager", live_config())
    assert await adapter.health() is True
    items = await adapter.sync_inventory()
    assert all(item.kind in ("ad_unit", "placement") for item in items)
