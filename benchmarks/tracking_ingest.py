"""Tracking ingestion benchmark: how many events a second `POST /api/v1/tracking/{kind}`
records (deduplicated, durable) with N concurrent senders.

    uv run python benchmarks/tracking_ingest.py --events 100000 --clients 16

It starts a server (fresh data dir, SQLite unless DATABASE_URL is set), books one
non-guaranteed buy as the demo buyer, then sends impressions (and a click for every
hundredth) with unique event ids, plus a replay of the first 1% to measure duplicate
rejections (409). It prints events/s, latency percentiles and how many were accepted.
(Tracked events show in delivery reports once their hour has closed.)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import HEADERS, TOKEN, Server, child_env, free_port  # noqa: E402

MCP_HEADERS = dict(HEADERS)


async def _mcp(client: httpx.AsyncClient, url: str, tool: str, args: dict[str, Any]) -> dict:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": args},
    }
    response = await client.post(url, json=body, headers=MCP_HEADERS)
    response.raise_for_status()
    result = response.json()["result"]
    if result.get("isError"):
        raise RuntimeError(f"{tool} failed: {result['structuredContent']}")
    return result["structuredContent"]


async def _book(server: Server) -> tuple[str, str]:
    start = datetime.now(UTC).replace(microsecond=0)
    async with httpx.AsyncClient(timeout=30) as client:
        buy = await _mcp(
            client,
            server.mcp_url,
            "create_media_buy",
            {
                "brand": {"domain": "bench.example"},
                "start_time": "asap",
                "end_time": (start + timedelta(days=30)).isoformat(),
                "packages": [
                    {
                        "product_id": "display_run_of_site",
                        "pricing_option_id": "ros_auction",
                        "bid_price": 4.0,
                        "budget": 1_000_000,
                    }
                ],
            },
        )
    return buy["media_buy_id"], buy["packages"][0]["package_id"]


async def _send(
    base: str, media_buy_id: str, package_id: str, ids: list[int], clients: int
) -> tuple[list[float], dict[int, int]]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in ids:
        queue.put_nowait(i)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    now = datetime.now(UTC).isoformat()
    headers = {"authorization": f"Bearer {TOKEN}"}

    async def sender() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as http:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                kind = "click" if i % 100 == 99 else "impression"
                began = time.perf_counter()
                response = await http.post(
                    f"/api/v1/tracking/{kind}",
                    json={
                        "event_id": f"ev-{i}",
                        "media_buy_id": media_buy_id,
                        "package_id": package_id,
                        "timestamp": now,
                    },
                )
                latencies.append(time.perf_counter() - began)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    await asyncio.gather(*(sender() for _ in range(clients)))
    return latencies, statuses


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(events: int, clients: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="adcp-track-bench-"))
    port = free_port()
    env = child_env(
        {
            "ADCP_AGENT_DEMO_TOKEN": TOKEN,
            "ADCP_AGENT_LOG_LEVEL": "warning",
            "ADCP_AGENT_MCP_RATE_LIMIT_PER_MINUTE": "100000000",
            "ADCP_AGENT_OUTBOX_WORKER": "false",
        }
    )
    argv = [
        sys.executable,
        "-m",
        "adcp_agent.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    server = Server("adcp-agent", argv, env, port)
    try:
        media_buy_id, package_id = await _book(server)
        began = time.perf_counter()
        latencies, statuses = await _send(
            server.base, media_buy_id, package_id, list(range(events)), clients
        )
        elapsed = time.perf_counter() - began
        replay = list(range(max(1, events // 100)))
        _, replay_statuses = await _send(server.base, media_buy_id, package_id, replay, clients)
        rss, peak = server.memory_mib()
    finally:
        server.stop()
    return {
        "events": events,
        "clients": clients,
        "seconds": round(elapsed, 2),
        "events_per_second": round(events / elapsed, 1),
        "latency_ms": {
            "p50": round(statistics.median(latencies) * 1000, 2),
            "p99": round(_pct(latencies, 0.99), 2),
        },
        "accepted": statuses.get(201, 0),
        "other_statuses": {k: v for k, v in statuses.items() if k != 201},
        "replayed_duplicates_rejected": replay_statuses.get(409, 0),
        "rss_mib": rss,
        "peak_rss_mib": peak,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    result = asyncio.run(main(args.events, args.clients))
    for key, value in result.items():
        print(f"{key:32} {value}")
