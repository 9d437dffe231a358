"""The mock ad server's orders in memory: past the few in use, held as the journal's
bytes rather than as objects."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from adcp_agent_adapters.mock import MockAdapter

from tests.mock_support import open_adapter, order_spec, state_file

__all__ = ["open_adapter", "state_file"]  # the fixtures


async def test_orders_are_held_as_bytes_and_a_change_to_one_put_away_is_kept(
    open_adapter: Callable[[], MockAdapter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the few orders in use, the server holds its orders as the journal's bytes,
    not as objects (half the memory, nothing for the garbage collector to walk). An
    order put away and taken out again has every change made to it, in this server and
    after a restart."""
    import gc

    from adcp_agent_adapters.mock import _JournalOrders, _Order

    monkeypatch.setattr(_JournalOrders, "LIVE", 8)
    adapter = open_adapter()
    first = await adapter.create_order(order_spec("mb_bytes_0"))
    await adapter.order_action(first.external_order_id, "activate")
    others = [await adapter.create_order(order_spec(f"mb_bytes_{i}")) for i in range(1, 40)]
    line = first.external_line_ids["pkg_2"]
    await adapter.line_action(first.external_order_id, line, "pause")  # taken out again
    for booked in others:
        await adapter.order_action(booked.external_order_id, "approve")  # put away again
    gc.collect()
    held = [
        o
        for o in gc.get_objects()
        if isinstance(o, _Order) and o.spec.media_buy_id.startswith("mb_bytes_")
    ]
    [state] = await adapter.sync_orders([first.external_order_id])
    after_restart = open_adapter().orders[first.external_order_id]
    assert len(held) <= 8 < len(adapter.orders) == 40
    assert (state.status, state.line_statuses[line]) == ("delivering", "paused")
    assert after_restart.status == "delivering" and after_restart.lines[line].status == "paused"
    assert {o.status for o in map(adapter.orders.get, [b.external_order_id for b in others])} == {
        "approved"
    }
