"""Guaranteed host-read bookings on the demo catalog's podcast product, for the tests of
inventory that a booking, an update or an interruption takes or gives back."""

from __future__ import annotations

from typing import Any

from adcp_agent_adapters.mock import load_state

from tests.media_helpers import guaranteed, whole_days
from tests.support import LiveServer, call


def flight(days_ahead: int) -> tuple[dict[str, Any], dict[str, str]]:
    """get_avails arguments and a create_media_buy flight over the same 30 whole days.
    Tests on one server book windows of their own (``days_ahead``: test_update_races
    70-190, test_interrupted 230-440 and 620, test_local_bookings 470-550,
    test_flight_moves 660-740, test_sibling_capacity 780-820, test_package_flights
    860-906): what one books does not
    move another's figures."""
    return whole_days("podcast_host_read", days_ahead, days=30)


def request(budget: float, flight_args: dict[str, str]) -> dict[str, Any]:
    return {
        **guaranteed(product="podcast_host_read", option="host_read_cpm", budget=budget),
        **flight_args,
    }


def budget(available: int, fraction: float) -> float:
    """The budget of ``fraction`` of ``available`` impressions."""
    return round(available * fraction * 25 / 1000, 2)  # host reads sell at a 25.00 CPM


async def available(client: Any, avail_args: dict[str, Any]) -> int:
    found = await call(client, "get_avails", avail_args)
    return int(found.data["packages"][0]["available_impressions"])


def mock_orders(live: LiveServer, mb: str) -> list[tuple[str, Any]]:
    """The mock ad server's orders (id, order) for media buy ``mb``."""
    orders, _ = load_state(live.data_dir / "adapters" / "demo-mock.state")
    return [(k, o) for k, o in orders.items() if o.spec.media_buy_id == mb]


def mock_orders_in(live: LiveServer, flight_args: dict[str, str]) -> list[Any]:
    """The mock ad server's orders whose flight starts when ``flight_args``' does."""
    orders, _ = load_state(live.data_dir / "adapters" / "demo-mock.state")
    start = flight_args["start_time"][:10]
    return [o for o in orders.values() if o.spec.start.date().isoformat() == start]
