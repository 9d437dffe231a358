"""What a database across a network costs a call: adcp-agent on PostgreSQL through a
proxy that holds every packet ``--delay-ms`` in each direction, one client calling
sequentially, so each call's latency carries its round trips to the database.

    uv run python benchmarks/db_latency.py --database-url postgresql://u@h/empty \\
        --delay-ms 0.5 --calls 100

Prints each operation's mean and p50 latency through the proxy with and without the
delay. The proxy is asyncio: a held packet waits at least the delay, often ~1 ms more
(the event loop's timer and scheduling), so compare code against code at the same
setting rather than reading round trips off the milliseconds. On the benchmark's
localhost cluster a round trip is cheap and the throughput runs (run.py) hardly see
it; a database in another zone charges it on every call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import HEADERS, Body, call, problem_of  # noqa: E402 - the scripts directory is not a package
from run import create_body, start_agent  # noqa: E402


class DelayProxy:
    """TCP on 127.0.0.1 forwarded to ``target``, each chunk held ``delay`` seconds in
    each direction (an order-preserving pipe per direction)."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.target, self.delay = target, delay
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@127.0.0.1:{port}" if auth else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def sequential(url: str, body: Body, calls: int) -> list[float]:
    """Latencies (s) of ``calls`` calls one after another (after two unmeasured)."""
    out: list[float] = []
    async with httpx.AsyncClient(headers=HEADERS, timeout=120) as http:
        for i in range(calls + 2):
            began = time.perf_counter()
            answer = await http.post(url, json=body(i))
            took = time.perf_counter() - began
            if problem := problem_of(answer.status_code, answer.content):
                raise RuntimeError(f"call {i} failed: {problem}")
            if i >= 2:
                out.append(took)
    return out


OPERATIONS: dict[str, Callable[[str], Body]] = {
    "create_media_buy": create_body,
    "get_products": lambda _run: call("get_products", {"brief": "sports fans on video"}),
}


async def measure(database_url: str, delay_ms: float, calls: int) -> dict[str, Any]:
    target = urlsplit(database_url)
    results: dict[str, Any] = {}
    # One data dir for both servers: its key seals the database's secrets.
    data_dir = Path(tempfile.mkdtemp(prefix="dblat-"))
    for label, delay in (("direct", 0.0), ("delayed", delay_ms / 1000)):
        proxy = DelayProxy((target.hostname or "127.0.0.1", target.port or 5432), delay)
        port = await proxy.start()
        # Started from a thread: it waits for /health blocking, and this loop must go
        # on forwarding the server's connections to the database meanwhile.
        agent = await asyncio.to_thread(start_agent, data_dir, through(database_url, port))
        try:
            for name, body in OPERATIONS.items():
                took = await sequential(agent.mcp_url, body(f"{label}-{time.time_ns()}"), calls)
                results.setdefault(name, {})[label] = {
                    "mean_ms": round(1000 * statistics.fmean(took), 2),
                    "p50_ms": round(1000 * statistics.median(took), 2),
                }
        finally:
            await asyncio.to_thread(agent.stop)
            await proxy.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="an empty PostgreSQL database")
    parser.add_argument("--delay-ms", type=float, default=0.5, help="held each way")
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args(argv)
    results = asyncio.run(measure(args.database_url, args.delay_ms, args.calls))
    print(
        f"{args.calls} sequential calls; the database through a proxy holding each packet "
        f"{args.delay_ms} ms each way, and through the same proxy without the delay:\n"
    )
    print("| call | mean ms direct | mean ms delayed | p50 ms direct | p50 ms delayed |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        d, s = r["direct"], r["delayed"]
        print(f"| {name} | {d['mean_ms']} | {s['mean_ms']} | {d['p50_ms']} | {s['p50_ms']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
