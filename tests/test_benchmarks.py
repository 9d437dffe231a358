"""The benchmark harness works end to end (with numbers too small to mean anything):
it starts the floor and two servers, bulk-loads buys through the real tables, drives
every operation over streamable HTTP without an error and reports each target. It
never asserts a timing; benchmarks/RESULTS.md holds the measurements."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.databases import database_settings

ROOT = Path(__file__).resolve().parent.parent


def _harness() -> ModuleType:
    """benchmarks/run.py, loaded as the script it is (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_harness_measures_every_operation_against_the_floor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.json"
    argv = ["--clients", "2", "--seconds", "0.2", "--rounds", "1", "--warmup", "0.05",
            "--buys", "50", "--json", str(out)]  # fmt: skip
    assert _harness().main(argv) == 0
    report = capsys.readouterr().out
    results = json.loads(out.read_text())

    agent_ops = set(results["agent"]["ops"])
    assert {"tools/list", "get_products", "create_media_buy"} <= agent_ops
    # Every operation has its floor measurement (the no-op or tools/list next to it).
    assert set(results["loaded"]["ops"]) == set(results["floor"]["ops"]) == agent_ops
    for server in ("floor", "agent", "loaded"):
        assert results[server]["cold_start_s"] > 0 and results[server]["rss_mib"] > 0
        for name, op in results[server]["ops"].items():
            assert op["requests"] > 0, (server, name)
            assert op["errors"] == 0, (server, name, op["first_error"])
            assert op["client_cpu_ms"] > 0, (server, name)
    assert results["agent"]["ops"]["tools/list"]["payload_bytes"] > 1000
    assert "| create_media_buy | " in report and "| noop |" in report
    assert "CPU per request" in report
    assert results["agent"]["ops"]["create_media_buy"]["server_cpu_ms"] > 0
    for line in ("| get_products |", "cold start", "RSS after the load", "tools/list payload"):
        assert line in report
    assert "With 50 media buys bulk-loaded" in report


def test_answers_are_checked_without_decoding_successful_ones() -> None:
    """The load generator's shortcut agrees with decoding the answer: a success passes,
    a tool error, a JSON-RPC error, an HTTP error and JSON it cannot vouch for without
    decoding (spaces in the envelope) are each judged by their content."""
    harness = sys.modules[_harness().load.__module__]  # benchmarks/harness.py
    ok = b'{"jsonrpc":"2.0","id":3,"result":{"content":[],"isError":false}}'
    tool_error = (
        b'{"jsonrpc":"2.0","id":3,"result":{"content":[],"isError":true,'
        b'"structuredContent":{"errors":[{"code":"INVALID_REQUEST"}]}}}'
    )
    rpc_error = b'{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"bad"}}'
    spaced_error = b'{"jsonrpc": "2.0", "id": 3, "result": {"content": [], "isError": true}}'
    assert harness.problem_of(200, ok) is None
    assert "INVALID_REQUEST" in harness.problem_of(200, tool_error)
    assert "-32602" in harness.problem_of(200, rpc_error)
    assert harness.problem_of(200, spaced_error) is not None
    assert harness.problem_of(401, b'{"error":"unauthorized"}').startswith("HTTP 401")


async def test_the_load_generators_own_lateness_is_measured() -> None:
    """A load generator whose loop was held up (here 50 ms on purpose) says so: the
    lateness it records bounds the latency that was its own, not the server's."""
    import asyncio
    import time

    harness = sys.modules[_harness().load.__module__]
    lag: list[float] = []
    start = time.perf_counter()

    async def hold_the_loop() -> None:
        await asyncio.sleep(0.02)
        time.sleep(0.05)  # noqa: ASYNC251 - a busy generator: nothing else runs meanwhile

    await asyncio.gather(harness._watch_lag(lag, start, start + 0.5), hold_the_loop())
    # The wake-up due during the hold (at most 5 ms after it began) came after it.
    assert max(lag) >= 0.04


def _db_latency() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_db_latency", ROOT / "benchmarks" / "db_latency.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_delay_proxy_forwards_every_byte_and_holds_each_direction() -> None:
    """db_latency.py's proxy: what goes through comes back whole and in order, and a
    request-answer exchange takes at least the delay twice (it never answers early)."""
    latency = _db_latency()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    target = server.sockets[0].getsockname()[:2]
    proxy = latency.DelayProxy(target, 0.05)
    port = await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        payload = bytes(range(256)) * 1000
        began = time.perf_counter()
        writer.write(payload)
        await writer.drain()
        received = await reader.readexactly(len(payload))
        took = time.perf_counter() - began
        writer.close()
    finally:
        await proxy.close()
        server.close()
    assert received == payload
    assert took >= 0.1


def test_the_database_url_is_pointed_at_the_proxy() -> None:
    through = _db_latency().through
    assert through("postgresql://u:p@db.example:5432/x?ssl=1", 6000) == (
        "postgresql://u:p@127.0.0.1:6000/x?ssl=1"
    )
    assert through("postgresql://db.example/x", 6001) == "postgresql://127.0.0.1:6001/x"


async def test_db_latency_books_and_reads_through_the_proxy(tmp_path: Path) -> None:
    """db_latency.py end to end on PostgreSQL (skipped without it): both servers start
    through the proxy, every call answers without an error (``sequential`` raises on
    one), and each operation has both measurements."""
    url = database_settings(tmp_path, "postgres")["DATABASE_URL"]
    results = await _db_latency().measure(url, 1.0, 2)
    assert set(results) == {"create_media_buy", "get_products"}
    for measured in results.values():
        assert set(measured) == {"direct", "delayed"}
        assert all(m["mean_ms"] > 0 and m["p50_ms"] > 0 for m in measured.values())


async def test_tool_cpu_calls_every_tool_without_an_error() -> None:
    """tool_cpu.py in-process: a library of two sync batches, then every case once; a
    call answering with an error raises, so each measured figure is a real call's."""
    spec = importlib.util.spec_from_file_location(
        "bench_tool_cpu", ROOT / "benchmarks" / "tool_cpu.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = await module.measure(150, 1)
    assert set(results) == set(module.cases([("mb", "pkg")] * 40))
    assert all(ms > 0 for ms in results.values()), results
