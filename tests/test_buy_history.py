"""get_media_buys' ``include_history`` (each buy's last revisions: who changed what,
when) and ``include_snapshot`` (each package's delivery so far), over streamable HTTP on
a simulated clock — and the migration that numbers the revisions of buys changed before
it — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from adcp_agent_tools.app import build_mcp
from adcp_agent_tools.executor import McpToolExecutor
from alembic import command
from fastmcp import Client
from sqlalchemy import text

from adcp_agent.db.migrate import upgrade_to_head
from adcp_agent.db.models_media import MediaBuy
from adcp_agent.services import identity, media_reads, order_sync
from adcp_agent.state import AppState
from tests.databases import Backend
from tests.delivery_support import (
    SECOND_BUYER_TOKEN,
    SimServer,
    approve_and_push_creatives_directly,
    buy_args,
    ros,
    sim,
    sim_postgres,
    sim_sqlite,
)
from tests.media_helpers import guaranteed, non_guaranteed
from tests.support import DEMO_TOKEN, ToolCall, assert_valid, call, mcp_client
from tests.test_migrations import _alembic

__all__ = ["sim", "sim_postgres", "sim_sqlite"]


async def _buys(client: Client, **args: Any) -> ToolCall:
    result = await call(client, "get_media_buys", args)
    assert not result.is_error, result.data
    assert_valid("get_media_buys", result.data)
    return result


async def _book(client: Client, server: SimServer, *packages: dict[str, Any]) -> dict[str, Any]:
    created = await call(client, "create_media_buy", buy_args(await server.now(), list(packages)))
    assert not created.is_error, created.data
    return created.data


async def _update(client: Client, media_buy_id: str, **args: Any) -> dict[str, Any]:
    result = await call(client, "update_media_buy", {"media_buy_id": media_buy_id, **args})
    assert not result.is_error, result.data
    return result.data


async def test_history_tells_each_revision_newest_first(sim: SimServer) -> None:
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        created = await _book(c, sim, ros(budget=2000), ros(budget=1000))
        mb = created["media_buy_id"]
        first, second = (p["package_id"] for p in created["packages"])
        await _update(c, mb, packages=[{"package_id": first, "budget": 2500}])
        await _update(c, mb, paused=True)
        await _update(c, mb, paused=False)
        await _update(c, mb, packages=[{"package_id": second, "paused": True}])
        [full] = (await _buys(c, media_buy_ids=[mb], include_history=50)).data["media_buys"]
        [latest] = (await _buys(c, media_buy_ids=[mb], include_history=2)).data["media_buys"]
        [plain] = (await _buys(c, media_buy_ids=[mb])).data["media_buys"]
    history = full["history"]
    assert [h["revision"] for h in history] == [5, 4, 3, 2, 1] and full["revision"] == 5
    assert [h["action"] for h in history] == [
        "package_paused",
        "resumed",
        "paused",
        "updated_budget",
        "created",
    ]
    assert history[0]["package_id"] == second and history[3]["package_id"] == first
    assert f"Package {first} budget from 2,000.00 USD to 2,500.00 USD" in history[3]["summary"]
    assert "impressions goal from 500,000 to 625,000" in history[3]["summary"]
    assert history[4]["summary"].startswith("Booked 2 package(s), 3,000.00 USD")
    assert all(h["actor"].startswith("principal:") for h in history)
    stamps = [h["timestamp"] for h in history]
    assert stamps == sorted(stamps, reverse=True)
    assert latest["history"] == history[:2]  # entries are append-only: the same again
    assert "history" not in plain and "snapshot" not in plain["packages"][0]


async def test_history_is_the_buyers_own_and_bounded(sim: SimServer) -> None:
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        mb = (await _book(c, sim, ros()))["media_buy_id"]
        too_many = await call(c, "get_media_buys", {"media_buy_ids": [mb], "include_history": 1001})
        negative = await call(c, "get_media_buys", {"media_buy_ids": [mb], "include_history": -1})
    async with mcp_client(sim.mcp_url, SECOND_BUYER_TOKEN) as other:
        theirs = await _buys(other, media_buy_ids=[mb], include_history=10)
    for refused in (too_many, negative):
        assert refused.is_error and refused.data["errors"][0]["field"] == "include_history"
    assert theirs.data["media_buys"] == []
    assert theirs.data["errors"][0]["code"] == "MEDIA_BUY_NOT_FOUND"


async def test_a_publisher_decision_is_in_the_history(sim: SimServer) -> None:
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        now = await sim.now()
        start, end = now + timedelta(days=3), now + timedelta(days=10)
        args = {**guaranteed(), "start_time": start.isoformat(), "end_time": end.isoformat()}
        submitted = await call(c, "create_media_buy", args)
        assert submitted.data["status"] == "submitted", submitted.data
        decided = await sim.admin(
            "POST",
            f"/approvals/{submitted.data['task_id']}/reject",
            json={"reason": "Sold out that week"},
        )
        assert decided.status_code == 200, decided.text
        mb = decided.json()["media_buy_id"]
        [buy] = (await _buys(c, media_buy_ids=[mb], include_history=5)).data["media_buys"]
    assert [h["action"] for h in buy["history"]] == ["rejected", "created"]
    assert buy["history"][0]["summary"] == "Declined by the publisher: Sold out that week."
    assert buy["history"][0]["actor"] == "admin:api"
    assert "awaiting the publisher's approval" in buy["history"][1]["summary"]


async def test_snapshot_is_each_packages_delivery_so_far(sim: SimServer) -> None:
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        serving = (await _book(c, sim, ros(budget=2000)))["media_buy_id"]
        starved = (await _book(c, sim, ros(budget=2000)))["media_buy_id"]  # no creative
        await approve_and_push_creatives_directly(sim.settings, serving)
        await sim.advance(12)
        listed = await _buys(c, media_buy_ids=[serving, starved], include_snapshot=True)
        delivery = await call(c, "get_media_buy_delivery", {"media_buy_ids": [serving]})
        now = await sim.now()
    by_id = {b["media_buy_id"]: b for b in listed.data["media_buys"]}
    [snap] = [p["snapshot"] for p in by_id[serving]["packages"]]
    [reported] = delivery.data["media_buy_deliveries"][0]["by_package"]
    assert snap["impressions"] == reported["impressions"] > 0
    assert snap["spend"] == reported["spend"] and snap["clicks"] == reported["clicks"]
    assert snap["delivery_status"] == "delivering" and 0.5 < snap["pacing_index"] < 1.5
    assert snap["staleness_seconds"] == 3600
    assert snap["as_of"] == now.replace(minute=0, second=0, microsecond=0).isoformat().replace(
        "+00:00", "Z"
    )
    [idle] = [p["snapshot"] for p in by_id[starved]["packages"]]
    assert idle["impressions"] == 0 and idle["delivery_status"] == "not_delivering"


async def test_history_survives_the_upgrade_that_numbers_it(
    prepared_state: AppState, backend: Backend
) -> None:
    """Buys changed before migration 0027 get their revisions numbered on upgrade when
    their audit rows account for every revision; a buy whose rows do not (here: one
    row lost) keeps none rather than wrong ones."""
    state = prepared_state
    tools = McpToolExecutor(build_mcp(state))
    caller = await identity.authenticate(state.db, DEMO_TOKEN)
    ids = []
    for n in range(2):
        args = {**non_guaranteed(budget=1000 + n), "start_time": "asap"}
        created = await tools.call(caller, "create_media_buy", args)
        assert not created.is_error, created.data
        mb = created.data["media_buy_id"]
        ids.append(mb)
        for paused in (True, False):
            done = await tools.call(
                caller, "update_media_buy", {"media_buy_id": mb, "paused": paused}
            )
            assert not done.is_error, done.data
    asked = {"media_buy_ids": ids, "include_history": 10}
    before = (await tools.call(caller, "get_media_buys", asked)).data["media_buys"]
    async with state.db.engine.begin() as conn:
        await conn.run_sync(_alembic(command.downgrade, "0026_cancellation"))
        await conn.execute(
            text(
                "DELETE FROM audit_logs WHERE id = (SELECT MIN(id) FROM audit_logs "
                "WHERE target_id = :mb AND action = 'media_buy.update')"
            ),
            {"mb": ids[1]},
        )
    await upgrade_to_head(state.db)
    after = (await tools.call(caller, "get_media_buys", asked)).data["media_buys"]
    by_id = {b["media_buy_id"]: b for b in after}
    assert [h["revision"] for h in by_id[ids[0]]["history"]] == [3, 2, 1]
    assert by_id[ids[0]]["history"] == {b["media_buy_id"]: b for b in before}[ids[0]]["history"]
    assert by_id[ids[1]]["history"] == []  # two rows for three revisions: not numbered


async def test_concurrent_changes_each_get_their_own_revision(
    prepared_state: AppState, backend: Backend
) -> None:
    """Changes that do not take turns through the update lease (an ad-server status
    followed by order sync, a publisher's decision) and buyer updates, all at once: no
    revision bump is lost and no two changes share a revision number (on PostgreSQL the
    buy's row is locked for each bump; SQLite runs writers one at a time)."""
    state = prepared_state
    tools = McpToolExecutor(build_mcp(state))
    caller = await identity.authenticate(state.db, DEMO_TOKEN)
    created = await tools.call(
        caller, "create_media_buy", {**non_guaranteed(), "start_time": "asap"}
    )
    assert not created.is_error, created.data
    mb, pkg = created.data["media_buy_id"], created.data["packages"][0]["package_id"]
    [buy] = await state.db.read_models(MediaBuy, media_reads.BUY_ROW, {"buy": mb})

    async def follow() -> None:
        await order_sync._follow(state, buy, "live", "DELIVERING", "system")

    async def budget(i: int) -> None:
        args = {"media_buy_id": mb, "packages": [{"package_id": pkg, "budget": 3000 + i}]}
        done = await tools.call(caller, "update_media_buy", args)
        assert not done.is_error, done.data

    await asyncio.gather(*(follow() for _ in range(12)), *(budget(i) for i in range(12)))
    asked = {"media_buy_ids": [mb], "include_history": 100}
    [listed] = (await tools.call(caller, "get_media_buys", asked)).data["media_buys"]
    assert listed["revision"] == 25
    assert [h["revision"] for h in listed["history"]] == list(range(25, 0, -1))
