"""The measuring parts of the benchmark: server processes timed from spawn to /health,
their memory from /proc, and closed-loop MCP clients over streamable HTTP."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

TOKEN = "adcp_benchmark_token_0123456789abcdefgh"
HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "authorization": f"Bearer {TOKEN}",
}
Body = Callable[[int], dict[str, Any]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """Children write bytecode to a cache outside the repo, as an installed package has
    it; under PYTHONDONTWRITEBYTECODE every start would recompile ~3 s of source."""
    env = {**os.environ, **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "adcp-agent-bench-pycache")
    return env


def prime_bytecode() -> None:
    """Compile once, unmeasured, so cold start means an installed server's start."""
    code = "import adcp_agent.cli, adcp_agent.server, adcp_agent_tools, fastmcp, uvicorn"
    subprocess.run([sys.executable, "-c", code], env=child_env({}), check=True)


class Server:
    """A server process on 127.0.0.1, timed from spawn to its first /health 200."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.port = name, port
        began = time.perf_counter()
        # Its log goes to a file, not a pipe: a pipe nobody reads during the run fills
        # (64 kB) and the server then blocks on its next log line, mid-request.
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = began + 60
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"{name} exited early:\n{self.log.read()}")
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.01)
        else:
            self.stop()
            raise RuntimeError(f"{name} did not answer /health within 60 s")
        self.cold_start_s = round(time.perf_counter() - began, 2)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.base}/mcp/"

    def memory_mib(self) -> tuple[float, float]:
        """(current RSS, peak RSS) of the server process, from /proc."""
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        rss, peak = (int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
        return round(rss, 1), round(peak, 1)

    def cpu_seconds(self) -> float:
        """User plus system CPU the server process has used, from /proc."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def call(tool: str, arguments: dict[str, Any]) -> Body:
    return lambda i: {
        "jsonrpc": "2.0",
        "id": i,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }


def tools_list(i: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": i, "method": "tools/list"}


def problem_of(status: int, body: bytes) -> str | None:
    """What went wrong with one answer, or None. A successful answer is recognised
    without decoding it: its envelope opens with ``"result"`` (compact JSON, as the
    servers write it) and it has no ``"isError":true``. Decoding a 48 kB tools/list
    answer took the load generator 0.8 ms, more than the server took to produce it, so
    the generator — on the same cores — was what limited the measured throughput.
    Anything else is decoded and checked in full."""
    if status != 200:
        return f"HTTP {status}: {body[:200].decode(errors='replace')}"
    head = body[:80]
    compact_result = head.startswith(b'{"jsonrpc":"2.0","id":') and b',"result":{' in head
    if compact_result and b'"isError":true' not in body:
        return None
    return error_of(json.loads(body))


def error_of(payload: dict[str, Any]) -> str | None:
    """The JSON-RPC error or the tool's error result, shortened; None on success."""
    if "error" in payload:
        return json.dumps(payload["error"])[:300]
    result = payload.get("result", {})
    if result.get("isError"):
        return json.dumps(result.get("structuredContent") or result)[:300]
    return None


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


async def _watch_lag(into: list[float], start: float, stop: float, every: float = 0.005) -> None:
    """How late the load generator's own event loop wakes from a 5 ms sleep, between
    ``start`` and ``stop`` (``time.perf_counter``): while it is late, answers that have
    arrived wait to be timed — latency the server did not cause."""
    while (due := time.perf_counter() + every) < stop:
        await asyncio.sleep(every)
        if due >= start:
            into.append(max(time.perf_counter() - due, 0.0))


@dataclass
class Samples:
    """Every measured request of one operation on one server, over all rounds; and the
    CPU the server and the load generator spent over whole loads (warm-up included),
    with the number of requests those loads made."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    payload_bytes: int = 0
    sent: int = 0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    client_lag: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        count = len(ordered)
        p99 = _p99(ordered)
        per_request = 1000 / self.sent if self.sent else 0.0
        return {
            "requests": count,
            "errors": len(self.errors),
            "p50_ms": round(statistics.median(ordered) * 1000, 2) if count else 0.0,
            "p99_ms": round(p99 * 1000, 2),
            "rps": round(count / self.seconds, 1) if self.seconds else 0.0,
            "payload_bytes": self.payload_bytes,
            "first_error": self.errors[0] if self.errors else None,
            "server_cpu_ms": round(self.server_cpu_s * per_request, 3),
            "client_cpu_ms": round(self.client_cpu_s * per_request, 3),
            "client_lag_p99_ms": round(_p99(self.client_lag) * 1000, 2),
        }


async def load(
    server: Server, body: Body, clients: int, seconds: float, warmup: float, into: Samples
) -> None:
    """``clients`` closed loops (send, wait for the answer, send again) for ``warmup``
    unmeasured seconds and then ``seconds`` measured ones; adds to ``into``."""
    counter = itertools.count()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
    async with httpx.AsyncClient(headers=HEADERS, limits=limits, timeout=120) as http:
        measure_from = time.perf_counter() + warmup
        stop_at = measure_from + seconds

        async def client() -> None:
            measured = 0
            # Every client measures at least one request, even when one answer outlasts
            # the whole window (tiny windows in the harness's own test, a slow machine).
            while (sent := time.perf_counter()) < stop_at or not measured:
                response = await http.post(server.mcp_url, json=body(next(counter)))
                took = time.perf_counter() - sent
                into.sent += 1
                if sent < measure_from:
                    continue
                measured += 1
                into.latencies.append(took)
                into.payload_bytes = max(into.payload_bytes, len(response.content))
                if problem := problem_of(response.status_code, response.content):
                    into.errors.append(problem)

        await asyncio.gather(
            _watch_lag(into.client_lag, measure_from, stop_at),
            *(client() for _ in range(clients)),
        )
    into.seconds += seconds
    into.server_cpu_s += server.cpu_seconds() - server_cpu
    into.client_cpu_s += time.process_time() - client_cpu
