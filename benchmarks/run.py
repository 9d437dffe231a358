"""Benchmark adcp-agent against the floor: a bare FastMCP no-op server on the same
transport (floor_server.py). Everything runs as real processes on 127.0.0.1; N clients
send MCP requests over streamable HTTP.

    uv run python benchmarks/run.py --clients 10 --seconds 5
    uv run python benchmarks/run.py --clients 10 --seconds 5 --buys 100000
    uv run python benchmarks/run.py ... --database-url postgresql://u@h/empty1 \\
        --loaded-database-url postgresql://u@h/empty2      # Postgres instead of SQLite

Measured: p50/p99 latency and throughput of tools/list, get_products,
get_media_buy_delivery (skipped if the build does not serve it) and create_media_buy,
each against the floor's no-op call (tools/list against the floor's tools/list); cold
start (spawn to /health 200, fresh data dir); RSS after the load; the tools/list
payload; and with ``--buys`` the same calls on a second server whose database holds that
many bulk-loaded media buys. The servers run side by side; in every round each
operation is measured on the floor and the server(s) back to back, in an order that
rotates from round to round, so a ratio or a drift compares measurements taken moments
apart and background load on the machine hits them alike. Targets are printed next to
the numbers; nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import (  # noqa: E402 - the scripts directory is not a package
    HEADERS,
    TOKEN,
    Body,
    Samples,
    Server,
    call,
    child_env,
    error_of,
    free_port,
    load,
    prime_bytecode,
    tools_list,
)
from report import markdown  # noqa: E402


def media_buy_args(key: str) -> dict[str, Any]:
    """A non-guaranteed buy the demo catalog always accepts."""
    start = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    return {
        "brand": {"domain": "bench.example"},
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(days=14)).isoformat(),
        "idempotency_key": key,
        "packages": [
            {
                "product_id": "display_run_of_site",
                "pricing_option_id": "ros_auction",
                "bid_price": 4.0,
                "budget": 1000,
            }
        ],
    }


def create_body(run: str) -> Body:
    """A new idempotency key per request (across rounds too): every call books a buy."""
    keys = itertools.count()
    return lambda i: call("create_media_buy", media_buy_args(f"bench-{run}-{next(keys):012d}"))(i)


def start_agent(data_dir: Path, database_url: str | None) -> Server:
    env = child_env(
        {
            "ADCP_AGENT_DEMO_TOKEN": TOKEN,
            "ADCP_AGENT_LOG_LEVEL": "warning",
            "ADCP_AGENT_DATA_DIR": str(data_dir),
            # The per-token limit (1000/min) would throttle the benchmark, not measure it.
            "ADCP_AGENT_MCP_RATE_LIMIT_PER_MINUTE": "1000000000",
        }
    )
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    port = free_port()
    argv = [sys.executable, "-m", "adcp_agent.cli", "serve", "--port", str(port)]
    return Server("adcp-agent", argv, env, port)


async def bulk_loaded(data_dir: Path, database_url: str | None, buys: int) -> float:
    """Prepare a database the way ``serve`` would, then bulk-load ``buys`` buys."""
    from seed_buys import seed

    from adcp_agent.config import Settings
    from adcp_agent.server import prepare
    from adcp_agent.state import AppState

    overrides: dict[str, Any] = {"DATABASE_URL": database_url} if database_url else {}
    state = AppState.from_settings(Settings(data_dir=data_dir, demo_token=TOKEN, **overrides))
    try:
        await prepare(state)
    finally:
        await state.db.dispose()
    return await seed(state.settings.resolved_database_url(), buys)


async def _plan(agent: Server, run: str) -> list[tuple[str, Body]]:
    """The agent's operations; delivery needs a buy to report on (booked here)."""
    async with httpx.AsyncClient(headers=HEADERS, timeout=60) as http:
        first = (await http.post(agent.mcp_url, json=create_body(f"{run}-setup")(0))).json()
        listed = (await http.post(agent.mcp_url, json=tools_list(0))).json()
    if error_of(first):
        raise RuntimeError(f"create_media_buy failed: {error_of(first)}")
    plan: list[tuple[str, Body]] = [
        ("tools/list", tools_list),
        ("get_products", call("get_products", {"brief": "sports"})),
    ]
    if "get_media_buy_delivery" in {t["name"] for t in listed["result"]["tools"]}:
        media_buy_id = first["result"]["structuredContent"]["media_buy_id"]
        plan.append(
            (
                "get_media_buy_delivery",
                call("get_media_buy_delivery", {"media_buy_ids": [media_buy_id]}),
            )
        )
    plan.append(("create_media_buy", create_body(run)))  # last: it grows the data
    return plan


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    prime_bytecode()
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="adcp-bench-") as tmp:
        try:
            port = free_port()
            floor = Server(
                "floor",
                [sys.executable, str(HERE / "floor_server.py"), "--port", str(port)],
                child_env({}),
                port,
            )
            servers.append(floor)
            agent = start_agent(Path(tmp) / "empty", args.database_url)
            servers.append(agent)
            targets: dict[str, tuple[Server, list[tuple[str, Body]]]] = {
                "agent": (agent, await _plan(agent, "empty")),
            }
            seed_seconds = None
            if args.buys:
                seed_seconds = round(
                    await bulk_loaded(Path(tmp) / "loaded", args.loaded_database_url, args.buys),
                    1,
                )
                loaded = start_agent(Path(tmp) / "loaded", args.loaded_database_url)
                servers.append(loaded)
                targets["loaded"] = (loaded, await _plan(loaded, "loaded"))
            # Each operation is measured on the floor (its tools/list, else its no-op
            # call), the agent and the loaded agent back to back, so every ratio and
            # drift compares measurements minutes apart at most.
            noop = call("noop", {"brief": "x"})
            ops = [op for op, _ in targets["agent"][1]]
            plans = {
                "floor": {op: tools_list if op == "tools/list" else noop for op in ops},
                **{name: dict(plan) for name, (_, plan) in targets.items()},
            }
            where = {"floor": floor, **{name: server for name, (server, _) in targets.items()}}
            samples = {name: {op: Samples() for op in ops} for name in plans}
            share = args.seconds / args.rounds
            for round_no in range(args.rounds):
                for op in ops:  # in the plan's order: create_media_buy last, it grows the data
                    for name in rotated(list(plans), round_no):
                        await load(where[name], plans[name][op], args.clients,
                                   share, args.warmup, samples[name][op])  # fmt: skip
            results: dict[str, Any] = {}
            for name, server in [("floor", floor), *((n, s) for n, (s, _) in targets.items())]:
                rss, peak = server.memory_mib()
                results[name] = {
                    "cold_start_s": server.cold_start_s,
                    "rss_mib": rss,
                    "peak_rss_mib": peak,
                    "ops": {op: s.summary() for op, s in samples[name].items()},
                }
        finally:
            for server in servers:
                server.stop()
    return {
        "machine": machine(),
        "settings": {
            "clients": args.clients,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "buys": args.buys,
        },
        "database": "postgres" if args.database_url else "sqlite",
        "seed_seconds": seed_seconds,
        "loaded": None,
        **results,
    }


def rotated(names: list[str], round_no: int) -> list[str]:
    """The order the servers take an operation in this round: each takes each place
    in turn, so neither a place (first after a change of operation, say) nor a slow
    moment of the machine favours one of them."""
    shift = round_no % len(names)
    return names[shift:] + names[:shift]


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average {load_avg:.2f} at the end"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=10, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured s per operation")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured s per round")
    parser.add_argument("--buys", type=int, default=0, help="also measure with this many buys")
    parser.add_argument("--database-url", help="an EMPTY Postgres database (default SQLite)")
    parser.add_argument("--loaded-database-url", help="a second EMPTY one, for --buys")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    if args.buys and bool(args.database_url) != bool(args.loaded_database_url):
        parser.error("--buys on Postgres needs both --database-url and --loaded-database-url")
    results = asyncio.run(benchmark(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
