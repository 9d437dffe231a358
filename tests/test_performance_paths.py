"""The performance paths keep their promises, through a live server:

* SQLite statements run inline on the event loop, yet many concurrent writers in one
  process all land, and a write lock held by *another process* neither fails a write
  nor stalls reads (the lock's bookkeeping itself: tests/test_sqlite_inline.py);
* the per-tenant catalog cache follows every catalog write, whoever makes it (another
  connection, another process, the test controller), for buyers and anonymous callers;
* the cached tools/list keeps the sandbox-only controller to sandbox callers while
  everyone else gets one identical list.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from adcp_agent.db.engine import create_database
from adcp_agent.services import catalog_admin, tenants
from adcp_agent.state import AppState
from tests.databases import BACKENDS, Backend, database_settings, per_backend
from tests.media_helpers import non_guaranteed
from tests.support import (
    DEMO_TOKEN,
    HARBOR_CATALOG,
    LiveServer,
    ServerThread,
    assert_valid,
    call,
    mcp_client,
    start_live_server,
)

SECOND_TOKEN = "adcp_test_perf_second_buyer_token_01234"
SBX_TOKEN = "adcp_test_perf_sandbox_runner_token_0123"
PROD_SBX_TOKEN = "adcp_test_perf_demo_sandbox_acct_tok_01"
INVALID_TOKEN = "adcp_test_perf_not_a_principal_token_01"
CONTROLLER = "comply_test_controller"
ALL_PRODUCTS = {"buying_mode": "wholesale", "pagination": {"max_results": 100}}


# --- a private server: its own data dir (SQLite) or its own database (Postgres) -------


async def _setup(state: AppState) -> None:
    """Beside the demo tenant: a second demo buyer, a demo principal that will declare
    a sandbox account, and a sandbox tenant (``features.sandbox``) with a runner."""
    await tenants.create_principal(
        state.db, tenant_id="demo", name="Second buyer", token=SECOND_TOKEN,
        principal_id="perf_second",
    )  # fmt: skip
    await tenants.create_principal(
        state.db, tenant_id="demo", name="Tester", token=PROD_SBX_TOKEN,
        principal_id="perf_demo_sbx",
    )  # fmt: skip
    await tenants.create_tenant(
        state.db, state.registry, name="Sandbox Pub", subdomain="sbx", tenant_id="sbx",
        features={"sandbox": True},
    )  # fmt: skip
    await catalog_admin.load_catalog(state.db, "sbx", **HARBOR_CATALOG)
    await tenants.create_principal(
        state.db, tenant_id="sbx", name="Runner", token=SBX_TOKEN, principal_id="perf_sbx"
    )


@dataclass
class PerfServer(LiveServer):
    backend: Backend = "sqlite"

    @property
    def db_path(self) -> Path:
        """The SQLite file (the server's data dir holds it)."""
        return self.data_dir / "adcp-agent.db"

    @property
    def url(self) -> str:
        return self.settings.resolved_database_url()


def _server(data_dir: Path, backend: Backend) -> tuple[ServerThread, PerfServer]:
    thread, live = start_live_server(data_dir, _setup, **database_settings(data_dir, backend))
    return thread, PerfServer(live.base_url, data_dir, live.settings, backend=backend)


def _module_server(factory: pytest.TempPathFactory, backend: Backend) -> Iterator[PerfServer]:
    thread, server = _server(factory.mktemp(f"perf_{backend}"), backend)
    yield server
    thread.stop()


# This module's private server on the test's backend (shared by its tests).
perf, perf_sqlite, perf_postgres = per_backend("perf", _module_server)


@pytest.fixture
def fresh(tmp_path: Path, backend: Backend) -> Iterator[PerfServer]:
    """A server of the test's own, started for it: nothing is cached yet."""
    thread, server = _server(tmp_path, backend)
    yield server
    thread.stop()


async def outside(server: PerfServer, sql: str, **params: Any) -> None:
    """One statement, committed on a connection of its own, the way another process
    (the CLI, a second server, a hand-written fix) would run it."""
    if server.backend == "sqlite":
        conn = sqlite3.connect(server.db_path)
        try:
            with conn:  # commits
                conn.execute(sql, params)
        finally:
            conn.close()
        return
    db = create_database(server.url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text(sql), params)
    finally:
        await db.dispose()


async def outside_scalar(server: PerfServer, sql: str, **params: Any) -> Any:
    db = create_database(server.url)
    try:
        async with db.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar_one()
    finally:
        await db.dispose()


async def catalog_version(server: PerfServer, tenant_id: str = "demo") -> int:
    return await outside_scalar(
        server, "SELECT catalog_version FROM tenants WHERE tenant_id = :t", t=tenant_id
    )


async def products(url: str, token: str | None = None, **headers: str) -> dict[str, str]:
    """Every product the caller may see, id -> name, from one get_products call."""
    async with mcp_client(url, token, extra_headers=headers or None) as client:
        result = await call(client, "get_products", ALL_PRODUCTS)
    assert not result.is_error, result.data
    assert_valid("get_products", result.data)
    return {p["product_id"]: p["name"] for p in result.data["products"]}


def _product(product_id: str, name: str, *, is_public: bool = True) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "name": name,
        "description": "A product added while the server runs.",
        "channels": ["display"],
        "delivery_type": "non_guaranteed",
        "format_ids": ["display_300x250"],
        "property_ids": ["riverside_news_web"],
        "pricing_options": [{"pricing_option_id": f"{product_id}_cpm", "floor_price": 2.0}],
        "is_public": is_public,
    }


# --- 1. SQLite inline: concurrent writers, a lock held by another process ---------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_twenty_concurrent_buys_all_land(perf: PerfServer) -> None:
    """Twenty create_media_buy calls at once from two buyers: every one is booked and
    stored; none fails with 'database is locked'."""
    async with (
        mcp_client(perf.mcp_url, DEMO_TOKEN) as first,
        mcp_client(perf.mcp_url, SECOND_TOKEN) as second,
    ):
        results = await asyncio.gather(
            *(call(client, "create_media_buy", non_guaranteed(budget=1000 + i))
              for i in range(10) for client in (first, second))
        )  # fmt: skip
        listed_first = await call(first, "get_media_buys", {})
        listed_second = await call(second, "get_media_buys", {})
    for result in results:
        assert not result.is_error, result.data
        assert_valid("create_media_buy", result.data)
    ids = [r.data["media_buy_id"] for r in results]
    assert len(set(ids)) == 20
    # What each buyer sees is its own ten.
    seen_first = {b["media_buy_id"] for b in listed_first.data["media_buys"]}
    seen_second = {b["media_buy_id"] for b in listed_second.data["media_buys"]}
    assert set(ids[0::2]) <= seen_first and not set(ids[1::2]) & seen_first
    assert set(ids[1::2]) <= seen_second and not set(ids[0::2]) & seen_second
    stored = await outside_scalar(
        perf,
        "SELECT count(*) FROM media_buys WHERE media_buy_id IN ("
        + ", ".join(f":m{i}" for i in range(20))
        + ")",
        **{f"m{i}": mid for i, mid in enumerate(ids)},
    )
    assert stored == 20


@pytest.mark.parametrize("ending", ["commit", "rollback"])
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_write_lock_held_by_another_process_delays_writes_not_reads(
    perf: PerfServer, ending: str
) -> None:
    """Another process holds SQLite's write lock (BEGIN IMMEDIATE, and a write): a buy
    started meanwhile waits for it, reads keep answering, and once the other process
    commits (a new snapshot) or rolls back, the buy is booked."""
    holder = sqlite3.connect(perf.db_path, isolation_level=None, timeout=5)
    async with (
        mcp_client(perf.mcp_url, DEMO_TOKEN) as buyer,
        mcp_client(perf.mcp_url, SECOND_TOKEN) as reader,
    ):
        try:
            holder.execute("BEGIN IMMEDIATE")
            holder.execute("UPDATE tenants SET name = name || '' WHERE tenant_id = 'sbx'")
            buy = asyncio.create_task(call(buyer, "create_media_buy", non_guaranteed()))
            answers = []
            for _ in range(4):  # the loop is not blocked by the waiting writer
                answers.append(await call(reader, "get_products", ALL_PRODUCTS))
                await asyncio.sleep(0.1)
            assert not buy.done(), buy.result().data  # nothing commits under the lock
        finally:
            holder.execute(ending.upper())
            holder.close()
        booked = await buy
    for answer in answers:
        assert not answer.is_error, answer.data
        assert "display_run_of_site" in {p["product_id"] for p in answer.data["products"]}
    assert not booked.is_error, booked.data
    assert_valid("create_media_buy", booked.data)
    stored = await outside_scalar(
        perf,
        "SELECT count(*) FROM media_buys WHERE media_buy_id = :m",
        m=booked.data["media_buy_id"],
    )
    assert stored == 1


# --- 2. The catalog cache follows every catalog write ----------------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_product_renamed_by_another_connection_is_served_renamed(
    perf: PerfServer,
) -> None:
    before = await products(perf.mcp_url, DEMO_TOKEN)
    assert before == await products(perf.mcp_url, DEMO_TOKEN)  # the cache is warm
    assert before["display_sports_section"] == "Display - Sports Section"
    anonymous_before = await products(perf.mcp_url)
    version = await catalog_version(perf)
    await outside(
        perf,
        "UPDATE products SET name = :name WHERE tenant_id = 'demo' AND product_id = :p",
        name="Display - Sports Section (renamed)",
        p="display_sports_section",
    )
    assert await catalog_version(perf) > version  # the trigger stamped the change
    after = await products(perf.mcp_url, DEMO_TOKEN)
    assert after == {**before, "display_sports_section": "Display - Sports Section (renamed)"}
    anonymous_after = await products(perf.mcp_url)
    assert anonymous_after == {
        **anonymous_before,
        "display_sports_section": "Display - Sports Section (renamed)",
    }


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_products_added_and_removed_elsewhere_appear_and_disappear(
    perf: PerfServer,
) -> None:
    before = await products(perf.mcp_url, DEMO_TOKEN)
    anonymous_before = await products(perf.mcp_url)
    assert "perf_added" not in before and "perf_hidden" not in before
    # Loaded through the catalog service by another Database: another process's writes.
    other = create_database(perf.url)
    try:
        await catalog_admin.load_catalog(
            other,
            "demo",
            products=[
                _product("perf_added", "Added elsewhere"),
                _product("perf_hidden", "Buyers only", is_public=False),
            ],
        )
    finally:
        await other.dispose()
    added = await products(perf.mcp_url, DEMO_TOKEN)
    assert added == {**before, "perf_added": "Added elsewhere", "perf_hidden": "Buyers only"}
    assert await products(perf.mcp_url) == {**anonymous_before, "perf_added": "Added elsewhere"}

    # Made private by hand: anonymous discovery loses it at once, buyers keep it.
    await outside(
        perf,
        "UPDATE products SET is_public = :v WHERE tenant_id = 'demo' AND product_id = :p",
        v=False,
        p="perf_added",
    )
    assert await products(perf.mcp_url) == anonymous_before
    assert await products(perf.mcp_url, DEMO_TOKEN) == added

    await outside(
        perf,
        "DELETE FROM products WHERE tenant_id = 'demo' AND product_id IN (:a, :b)",
        a="perf_added",
        b="perf_hidden",
    )
    assert await products(perf.mcp_url, DEMO_TOKEN) == before
    assert await products(perf.mcp_url) == anonymous_before


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_formats_and_properties_changed_elsewhere_are_listed_fresh(
    perf: PerfServer,
) -> None:
    async with mcp_client(perf.mcp_url, DEMO_TOKEN) as client:
        formats = await call(client, "list_creative_formats")
        props = await call(client, "list_authorized_properties")
        await outside(
            perf,
            "UPDATE creative_formats SET name = :n WHERE tenant_id = 'demo' AND format_id = :f",
            n="Leaderboard (renamed)",
            f="display_728x90",
        )
        await outside(
            perf,
            "UPDATE authorized_properties SET publisher_domain = :d "
            "WHERE tenant_id = 'demo' AND property_id = :p",
            d="podcasts.riverside.example",
            p="riverside_podcasts",
        )
        formats_after = await call(client, "list_creative_formats")
        props_after = await call(client, "list_authorized_properties")
    names = {f["format_id"]["id"]: f["name"] for f in formats.data["formats"]}
    names_after = {f["format_id"]["id"]: f["name"] for f in formats_after.data["formats"]}
    assert names_after == {**names, "display_728x90": "Leaderboard (renamed)"}
    assert "podcasts.riverside.example" not in props.data["publisher_domains"]
    assert "podcasts.riverside.example" in props_after.data["publisher_domains"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_signal_added_and_removed_elsewhere_is_targetable_exactly_meanwhile(
    perf: PerfServer,
) -> None:
    """create_media_buy checks targeted signals against the cached catalog."""

    def targeting(signal: str) -> dict[str, Any]:
        return non_guaranteed(targeting_overlay={"signals": [signal]})

    signal = {"signal_id": "perf_signal", "name": "Perf Readers",
              "description": "Readers of performance notes", "signal_type": "audience"}  # fmt: skip
    async with mcp_client(perf.mcp_url, DEMO_TOKEN) as client:
        unknown = await call(client, "create_media_buy", targeting("perf_signal"))
        other = create_database(perf.url)
        try:
            await catalog_admin.load_catalog(other, "demo", signals=[signal])
        finally:
            await other.dispose()
        known = await call(client, "create_media_buy", targeting("perf_signal"))
        await outside(
            perf, "DELETE FROM signals WHERE tenant_id = 'demo' AND signal_id = 'perf_signal'"
        )
        gone = await call(client, "create_media_buy", targeting("perf_signal"))
    assert unknown.is_error and "perf_signal" in unknown.error["message"], unknown.data
    assert not known.is_error, known.data
    assert_valid("create_media_buy", known.data)
    assert gone.is_error and gone.error_codes == unknown.error_codes, gone.data
    assert "perf_signal" in gone.error["message"]


async def test_another_tenants_catalog_write_leaves_this_one_alone(perf: PerfServer) -> None:
    assert "harbor_drive_time" in await products(perf.mcp_url, SBX_TOKEN)  # warm
    demo_before = await products(perf.mcp_url, DEMO_TOKEN)
    demo, sbx = await catalog_version(perf, "demo"), await catalog_version(perf, "sbx")
    await outside(
        perf,
        "UPDATE products SET name = :n WHERE tenant_id = 'sbx' AND product_id = :p",
        n="Harbor Drive Time (renamed)",
        p="harbor_drive_time",
    )
    assert await catalog_version(perf, "demo") == demo
    assert await catalog_version(perf, "sbx") > sbx
    sandbox = await products(perf.mcp_url, SBX_TOKEN)
    assert sandbox["harbor_drive_time"] == "Harbor Drive Time (renamed)"
    assert await products(perf.mcp_url, DEMO_TOKEN) == demo_before


async def test_a_product_seeded_by_the_test_controller_is_served_at_once(
    perf: PerfServer,
) -> None:
    """The in-process writer: the controller loads the catalog through the server's
    own Database, and the next get_products (cache warm before) shows it."""
    fixture = {"name": "Seeded banner", "channels": ["radio"], "delivery_type": "non_guaranteed"}
    async with mcp_client(perf.mcp_url, SBX_TOKEN) as client:
        before = await call(client, "get_products", ALL_PRODUCTS)
        seeded = await call(
            client,
            CONTROLLER,
            {"scenario": "seed_product", "account": {"sandbox": True},
             "params": {"product_id": "perf_seeded", "fixture": fixture}},
        )  # fmt: skip
        after = await call(client, "get_products", ALL_PRODUCTS)
        renamed = await call(
            client,
            CONTROLLER,
            {"scenario": "seed_product", "account": {"sandbox": True},
             "params": {"product_id": "perf_seeded",
                        "fixture": {**fixture, "name": "Seeded banner v2"}}},
        )  # fmt: skip
        again = await call(client, "get_products", ALL_PRODUCTS)
    assert not seeded.is_error and seeded.data["success"] is True, seeded.data
    assert not renamed.is_error and renamed.data["success"] is True, renamed.data
    assert "perf_seeded" not in {p["product_id"] for p in before.data["products"]}
    by_id = {p["product_id"]: p["name"] for p in after.data["products"]}
    assert by_id["perf_seeded"] == "Seeded banner"
    assert {p["product_id"]: p["name"] for p in again.data["products"]}["perf_seeded"] == (
        "Seeded banner v2"
    )


# --- 3. The cached tools/list keeps the controller to sandbox callers ------------------


def _listing(tools: list[Any]) -> list[dict[str, Any]]:
    return [t.model_dump(mode="json") for t in tools]


@pytest.mark.parametrize("first", ["sandbox", "buyer"])
async def test_tools_list_cache_serves_each_caller_its_own_list(
    fresh: PerfServer, first: str
) -> None:
    """On a server nothing has been listed on yet, tools/list from a buyer, a sandbox
    runner, anonymous callers (of the demo and of the sandbox tenant) and an unknown
    token, interleaved in several orders and at once: only the sandbox runner ever sees
    the controller; everyone else gets the same list; the runner's is that plus it."""
    callers: dict[str, tuple[str | None, dict[str, str] | None]] = {
        "sandbox": (SBX_TOKEN, None),
        "buyer": (DEMO_TOKEN, None),
        "anonymous": (None, None),
        "anonymous_sbx": (None, {"x-adcp-tenant": "sbx"}),
        "invalid": (INVALID_TOKEN, None),
        "second": (SECOND_TOKEN, None),
    }
    order = [first, *(name for name in callers if name != first)]
    seen: dict[str, list[list[dict[str, Any]]]] = {name: [] for name in callers}
    async with AsyncExitStack() as stack:
        clients: dict[str, Any] = {}
        for name in order:
            token, headers = callers[name]
            client = mcp_client(fresh.mcp_url, token, extra_headers=headers)
            clients[name] = await stack.enter_async_context(client)
        rounds = [order, order[::-1], order[1:] + order[:1], order[::2] + order[1::2]]
        for names in rounds:
            for name in names:
                seen[name].append(_listing(await clients[name].list_tools()))
        together = await asyncio.gather(*(clients[name].list_tools() for name in order * 2))
        for name, tools in zip(order * 2, together, strict=True):
            seen[name].append(_listing(tools))

    sandbox_lists = seen.pop("sandbox")
    reference = seen["buyer"][0]
    names = [t["name"] for t in reference]
    assert CONTROLLER not in names and "get_products" in names and "create_media_buy" in names
    for name, lists in seen.items():
        for listing in lists:
            assert CONTROLLER not in [t["name"] for t in listing], name
            assert listing == reference, name
    for listing in sandbox_lists:
        assert CONTROLLER in [t["name"] for t in listing]
        assert [t for t in listing if t["name"] != CONTROLLER] == reference


async def test_a_principal_that_gains_a_sandbox_account_is_listed_the_controller(
    perf: PerfServer,
) -> None:
    """Visibility is worked out per request, not per token: a demo principal sees the
    controller once it has a sandbox account; the other demo buyers still do not."""
    async with (
        mcp_client(perf.mcp_url, PROD_SBX_TOKEN) as tester,
        mcp_client(perf.mcp_url, DEMO_TOKEN) as buyer,
    ):
        before = {t.name for t in await tester.list_tools()}
        buyer_before = _listing(await buyer.list_tools())
        synced = await call(
            tester,
            "sync_accounts",
            {"accounts": [{"brand": {"domain": "perf.example"}, "operator": "perf.example",
                           "billing": "operator", "sandbox": True}]},
        )  # fmt: skip
        after = {t.name for t in await tester.list_tools()}
        buyer_after = _listing(await buyer.list_tools())
        anonymous = mcp_client(perf.mcp_url)
        async with anonymous:
            anonymous_after = _listing(await anonymous.list_tools())
    assert not synced.is_error, synced.data
    assert CONTROLLER not in before
    assert after == before | {CONTROLLER}
    assert buyer_after == buyer_before == anonymous_after
    assert CONTROLLER not in {t["name"] for t in buyer_after}
