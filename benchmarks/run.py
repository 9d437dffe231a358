"""Benchmark adcp-agent against the floor: a bare FastMCP no-op server on the same
transport (see floor_server.py). Both run as real processes on 127.0.0.1; N clients
send MCP requests over streamable HTTP for S seconds per operation.

    uv run python benchmarks/run.py --clients 10 --seconds 5
    uv run python benchmarks/run.py --clients 10 --seconds 5 --buys 100000
    uv run python benchmarks/run.py ... --database-url postgresql://user@host/emptydb

Measured: p50/p99 latency and throughput of tools/list, get_products,
get_media_buy_delivery and create_media_buy (each against the floor's no-op call, or
the floor's tools/list), cold start (process start to /health 200, fresh data dir),
RSS after the load, the tools/list payload, and — with ``--buys`` — the same calls
again after bulk-loading that many media buys (seed_buys.py). Targets are printed next
to the numbers; nothing here asserts: benchmarks inform, tests decide.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TOKEN = "adcp_benchmark_token_0123456789abcdefgh"
HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "authorization": f"Bearer {TOKEN}",
}
TARGETS = {
    "p50_ratio": 1.5,  # per call p50 at most 1.5x the floor's
    "throughput_ratio": 0.6,  # at least 0.6x the floor's requests per second
    "cold_start_s": 3.0,
    "rss_mib": 150.0,
    "tools_list_kb": 150.0,
    "p50_drift": 0.20,  # p50 with --buys within +-20% of the empty database's
}
Body = Callable[[int], dict[str, Any]]


@dataclass
class OpResult:
    name: str
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    rps: float
    payload_bytes: int
    first_error: str | None = None


@dataclass
class ServerResult:
    name: str
    cold_start_s: float
    rss_mib: float = 0.0
    peak_rss_mib: float = 0.0
    ops: dict[str, OpResult] = field(default_factory=dict)


class Server:
    """A server process on a free 127.0.0.1 port, timed from spawn to /health 200."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.port = name, port
        began = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        deadline = began + 60
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{self.proc.stderr.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.01)
        else:
            self.stop()
            raise RuntimeError(f"{name} did not answer /health within 60 s")
        self.cold_start_s = time.perf_counter() - began

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory_mib(self) -> tuple[float, float]:
        """(current RSS, peak RSS) of the server process, from /proc."""
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(tool: str, arguments: dict[str, Any]) -> Body:
    return lambda i: {
        "jsonrpc": "2.0",
        "id": i,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }


def _tools_list(i: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": i, "method": "tools/list"}


def _error_of(payload: dict[str, Any]) -> str | None:
    if "error" in payload:
        return json.dumps(payload["error"])[:300]
    result = payload.get("result", {})
    if result.get("isError"):
        return json.dumps(result.get("structuredContent") or result)[:300]
    return None


async def load(
    name: str, url: str, body: Body, clients: int, seconds: float, warmup: float
) -> OpResult:
    """``clients`` concurrent loops of one request after another; latencies of the
    requests that start after ``warmup`` seconds and before the end are kept."""
    counter = itertools.count()
    latencies: list[float] = []
    errors: list[str] = []
    payload = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers=HEADERS, limits=limits, timeout=60) as http:
        start = time.perf_counter()
        measure_from, stop_at = start + warmup, start + warmup + seconds

        async def client() -> None:
            nonlocal payload
            while (sent := time.perf_counter()) < stop_at:
                response = await http.post(url, json=body(next(counter)))
                took = time.perf_counter() - sent
                problem = (
                    f"HTTP {response.status_code}: {response.text[:200]}"
                    if response.status_code != 200
                    else _error_of(response.json())
                )
                if sent >= measure_from:
                    latencies.append(took)
                    payload = max(payload, len(response.content))
                    if problem:
                        errors.append(problem)

        await asyncio.gather(*(client() for _ in range(clients)))
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    return OpResult(
        name=name,
        requests=len(latencies),
        errors=len(errors),
        p50_ms=round(statistics.median(latencies) * 1000, 2) if latencies else 0.0,
        p99_ms=round(p99 * 1000, 2),
        rps=round(len(latencies) / seconds, 1),
        payload_bytes=payload,
        first_error=errors[0] if errors else None,
    )


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """Children write bytecode to a cache outside the repo, as an installed package
    has it; with PYTHONDONTWRITEBYTECODE every start would recompile ~3 s of source."""
    env = {**os.environ, **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "adcp-agent-bench-pycache")
    return env


def _prime_bytecode(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-c", "import adcp_agent.cli, adcp_agent.server, adcp_agent_tools"],
        env=env,
        check=True,
    )


def _media_buy_args(key: str) -> dict[str, Any]:
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


def _create_body(run: str) -> Body:
    def body(i: int) -> dict[str, Any]:
        return _call("create_media_buy", _media_buy_args(f"bench-{run}-{i:09d}"))(i)

    return body


def _agent_env(args: argparse.Namespace, data_dir: Path) -> dict[str, str]:
    extra = {
        "ADCP_AGENT_DEMO_TOKEN": TOKEN,
        "ADCP_AGENT_LOG_LEVEL": "warning",
        "ADCP_AGENT_DATA_DIR": str(data_dir),
        # The per-token limit (1000/min) would throttle the benchmark, not measure it.
        "ADCP_AGENT_MCP_RATE_LIMIT_PER_MINUTE": "1000000000",
    }
    env = _child_env(extra)
    env.pop("DATABASE_URL", None)
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    return env


def _start_agent(args: argparse.Namespace, data_dir: Path) -> Server:
    port = _free_port()
    argv = [sys.executable, "-m", "adcp_agent.cli", "serve", "--port", str(port)]
    return Server("adcp-agent", argv, _agent_env(args, data_dir), port)


async def _agent_ops(server: Server, args: argparse.Namespace, run: str) -> dict[str, OpResult]:
    url = f"{server.base}/mcp/"
    async with httpx.AsyncClient(headers=HEADERS, timeout=60) as http:
        first = (
            await http.post(
                url, json=_call("create_media_buy", _media_buy_args(f"bench-{run}-setup-000000"))(0)
            )
        ).json()
        tools = (await http.post(url, json=_tools_list(0))).json()
    error = _error_of(first)
    if error:
        raise RuntimeError(f"create_media_buy failed: {error}")
    media_buy_id = first["result"]["structuredContent"]["media_buy_id"]
    names = {t["name"] for t in tools["result"]["tools"]}
    plan: list[tuple[str, Body]] = [
        ("tools/list", _tools_list),
        ("get_products", _call("get_products", {"brief": "sports"})),
    ]
    if "get_media_buy_delivery" in names:
        plan.append(
            (
                "get_media_buy_delivery",
                _call("get_media_buy_delivery", {"media_buy_ids": [media_buy_id]}),
            )
        )
    plan.append(("create_media_buy", _create_body(run)))  # last: it grows the data
    out = {}
    for name, body in plan:
        out[name] = await load(name, url, body, args.clients, args.seconds, args.warmup)
    return out


async def _floor(args: argparse.Namespace) -> ServerResult:
    port = _free_port()
    argv = [sys.executable, str(HERE / "floor_server.py"), "--port", str(port)]
    server = Server("floor", argv, _child_env({}), port)
    try:
        result = ServerResult("floor", round(server.cold_start_s, 2))
        url = f"{server.base}/mcp/"
        for name, body in (("tools/list", _tools_list), ("noop", _call("noop", {"brief": "x"}))):
            result.ops[name] = await load(name, url, body, args.clients, args.seconds, args.warmup)
        result.rss_mib, result.peak_rss_mib = (round(v, 1) for v in server.memory_mib())
    finally:
        server.stop()
    return result


async def _agent(args: argparse.Namespace, data_dir: Path, run: str) -> ServerResult:
    server = _start_agent(args, data_dir)
    try:
        result = ServerResult("adcp-agent", round(server.cold_start_s, 2))
        result.ops = await _agent_ops(server, args, run)
        result.rss_mib, result.peak_rss_mib = (round(v, 1) for v in server.memory_mib())
    finally:
        server.stop()
    return result


def _database_url(args: argparse.Namespace, data_dir: Path) -> str:
    from adcp_agent.config import Settings

    overrides: dict[str, Any] = {"DATABASE_URL": args.database_url} if args.database_url else {}
    return Settings(data_dir=data_dir, **overrides).resolved_database_url()


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    _prime_bytecode(_child_env({}))
    floor = await _floor(args)
    with tempfile.TemporaryDirectory(prefix="adcp-bench-") as tmp:
        data_dir = Path(tmp)
        agent = await _agent(args, data_dir, "empty")
        loaded: ServerResult | None = None
        seed_s = None
        if args.buys:
            from seed_buys import seed

            seed_s = round(await seed(_database_url(args, data_dir), args.buys), 1)
            loaded = await _agent(args, data_dir, "loaded")
    return {
        "machine": _machine(),
        "settings": {"clients": args.clients, "seconds": args.seconds, "buys": args.buys},
        "floor": asdict(floor),
        "agent": asdict(agent),
        "loaded": asdict(loaded) if loaded else None,
        "seed_seconds": seed_s,
        "database": "postgres" if args.database_url else "sqlite",
    }


def _machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, load average {load:.2f} at start"
    )


def report(results: dict[str, Any]) -> str:
    """The results as a Markdown table, with each target and whether it was met."""
    floor, agent, loaded = results["floor"], results["agent"], results["loaded"]
    noop, floor_list = floor["ops"]["noop"], floor["ops"]["tools/list"]
    lines = [
        f"Machine: {results['machine']}",
        f"Load: {results['settings']['clients']} clients x {results['settings']['seconds']} s "
        f"per operation; database: {results['database']}",
        "",
        "| operation | p50 ms | p99 ms | req/s | errors | p50 / floor | req/s / floor | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for op in (floor_list, noop):
        lines.append(
            f"| floor {op['name']} | {op['p50_ms']} | {op['p99_ms']} | {op['rps']} | "
            f"{op['errors']} | 1.00 | 1.00 | |"
        )
    for name, op in agent["ops"].items():
        base = floor_list if name == "tools/list" else noop
        p50_ratio = op["p50_ms"] / base["p50_ms"] if base["p50_ms"] else float("inf")
        rps_ratio = op["rps"] / base["rps"] if base["rps"] else 0.0
        met = p50_ratio <= TARGETS["p50_ratio"] and rps_ratio >= TARGETS["throughput_ratio"]
        lines.append(
            f"| {name} | {op['p50_ms']} | {op['p99_ms']} | {op['rps']} | {op['errors']} | "
            f"{p50_ratio:.2f} | {rps_ratio:.2f} | {'yes' if met and not op['errors'] else 'NO'} |"
        )
    if "get_media_buy_delivery" not in agent["ops"]:
        lines.append("| get_media_buy_delivery | not served by this build: skipped | | | | | | |")
    tools_kb = agent["ops"]["tools/list"]["payload_bytes"] / 1024
    lines += [
        "",
        "| measure | adcp-agent | floor | target | met |",
        "|---|---|---|---|---|",
        _row(
            "cold start (s)",
            agent["cold_start_s"],
            floor["cold_start_s"],
            f"< {TARGETS['cold_start_s']}",
            agent["cold_start_s"] < TARGETS["cold_start_s"],
        ),
        _row(
            "RSS after load (MiB)",
            agent["rss_mib"],
            floor["rss_mib"],
            f"< {TARGETS['rss_mib']:.0f}",
            agent["rss_mib"] < TARGETS["rss_mib"],
        ),
        _row("peak RSS (MiB)", agent["peak_rss_mib"], floor["peak_rss_mib"], "", None),
        _row(
            "tools/list payload (kB)",
            round(tools_kb, 1),
            round(floor_list["payload_bytes"] / 1024, 1),
            f"< {TARGETS['tools_list_kb']:.0f}",
            tools_kb < TARGETS["tools_list_kb"],
        ),
    ]
    if loaded:
        lines += [
            "",
            f"With {results['settings']['buys']:,} media buys bulk-loaded "
            f"(in {results['seed_seconds']} s), restarted:",
            "",
            "| operation | p50 ms empty | p50 ms loaded | drift | p99 ms loaded | req/s loaded "
            "| met (±20%) |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, op in loaded["ops"].items():
            before = agent["ops"][name]["p50_ms"]
            drift = (op["p50_ms"] - before) / before if before else float("inf")
            met = abs(drift) <= TARGETS["p50_drift"] and not op["errors"]
            lines.append(
                f"| {name} | {before} | {op['p50_ms']} | {drift:+.0%} | {op['p99_ms']} | "
                f"{op['rps']} | {'yes' if met else 'NO'} |"
            )
        lines.append(
            f"\nCold start with the loaded database: {loaded['cold_start_s']} s; "
            f"RSS after load {loaded['rss_mib']} MiB."
        )
    errors = [
        f"- {op['name']}: {op['first_error']}"
        for server in (agent, loaded or {"ops": {}})
        for op in server["ops"].values()
        if op["first_error"]
    ]
    if errors:
        lines += ["", "First error per operation:", *errors]
    return "\n".join(lines)


def _row(label: str, ours: Any, floor: Any, target: str, met: bool | None) -> str:
    verdict = "" if met is None else ("yes" if met else "NO")
    return f"| {label} | {ours} | {floor} | {target} | {verdict} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=10, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per operation")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="unmeasured lead-in per operation"
    )
    parser.add_argument("--buys", type=int, default=0, help="also run with this many buys loaded")
    parser.add_argument("--database-url", help="an EMPTY Postgres database (default: SQLite)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    results = asyncio.run(benchmark(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
