"""PostgreSQL as production runs it: two server processes (``adcp-agent serve``) on one
database, started together on an empty database, serving the same tenant, with
idempotent creates racing across both processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlmodel import select

from adcp_agent.db.engine import create_database
from adcp_agent.db.models_media import IdempotencyRecord, MediaBuy
from tests.databases import SELECTION, PostgresUnavailable
from tests.media_helpers import non_guaranteed
from tests.support import call, free_port, mcp_client

TOKEN = "adcp_two_process_token_0123456789abcdef"


@pytest.fixture
def postgres_url() -> str:
    try:
        url = SELECTION.postgres().create_database("multi")
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL: {exc}")
    SELECTION.postgres_tests += 1
    return url


def _stable(buys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A buy as any process reports it (``status_as_of`` is the time of the answer)."""
    return [{k: v for k, v in buy.items() if k != "status_as_of"} for buy in buys]


@contextmanager
def _servers(database_url: str, count: int) -> Iterator[list[str]]:
    """``count`` ``adcp-agent serve`` processes on one database, started at once."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ADCP_AGENT_DEMO_TOKEN": TOKEN,
        "ADCP_AGENT_LOG_LEVEL": "warning",
        # Replicas behind one load balancer share one public URL (used in agent_url).
        "ADCP_AGENT_PUBLIC_BASE_URL": "http://agents.example",
    }
    ports = [free_port() for _ in range(count)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "adcp_agent.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 60
        pending = set(ports)
        while pending and time.monotonic() < deadline:
            for proc, port in zip(procs, ports, strict=True):
                if proc.poll() is not None:
                    raise AssertionError(f"serve exited early:\n{proc.communicate()[0]}")
                if port in pending:
                    try:
                        url = f"http://127.0.0.1:{port}/health"
                        if httpx.get(url, timeout=1).status_code == 200:
                            pending.discard(port)
                    except httpx.HTTPError:
                        pass
            time.sleep(0.05)
        assert not pending, "serve did not answer /health within 60 s"
        yield [f"http://127.0.0.1:{port}/mcp/" for port in ports]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


async def test_two_processes_serve_one_tenant_and_create_a_keyed_buy_once(
    postgres_url: str,
) -> None:
    args = non_guaranteed(budget=2500)
    with _servers(postgres_url, 2) as (first, second):
        async with mcp_client(first, TOKEN) as a, mcp_client(second, TOKEN) as b:
            results = await asyncio.gather(
                *(call(client, "create_media_buy", args) for client in (a, b, a, b, a, b))
            )
            media_buy_id = results[0].data.get("media_buy_id")
            seen_by_a = await call(a, "get_media_buys", {"media_buy_ids": [media_buy_id]})
            seen_by_b = await call(b, "get_media_buys", {"media_buy_ids": [media_buy_id]})
            products_a = await call(a, "get_products", {"buying_mode": "wholesale"})
            products_b = await call(b, "get_products", {"buying_mode": "wholesale"})

    assert all(not r.is_error for r in results), [r.data for r in results]
    assert {r.data["media_buy_id"] for r in results} == {media_buy_id}
    assert sum(1 for r in results if r.data.get("replayed")) == len(results) - 1
    assert _stable(seen_by_a.data["media_buys"]) == _stable(seen_by_b.data["media_buys"])
    assert [m["media_buy_id"] for m in seen_by_b.data["media_buys"]] == [media_buy_id]
    assert products_a.data["pagination"]["total_count"] == 11
    assert products_a.data["products"] == products_b.data["products"]

    db = create_database(postgres_url)
    try:
        async with db.session() as session:
            buys = (await session.exec(select(MediaBuy))).all()
            claims = (await session.exec(select(IdempotencyRecord))).all()
    finally:
        await db.dispose()
    assert [b.media_buy_id for b in buys] == [media_buy_id]
    assert [(c.key, c.status) for c in claims] == [(args["idempotency_key"], "completed")]
