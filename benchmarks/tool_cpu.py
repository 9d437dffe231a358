"""CPU per call of every buyer-facing tool, in-process and sequential, as a library
grows: the app is driven through its whole ASGI stack (middleware, MCP, tool, database)
without sockets, so the figure is the server's own work for one call. It is how the
fourteenth round found sync_creatives and list_creatives growing with the buyer's
creative library (benchmarks/RESULTS.md).

    uv run python benchmarks/tool_cpu.py --calls 100 --library 200 2000

For each library size: a fresh SQLite data dir, 40 bookings, ``--library`` creatives
(synced 100 a call, every tenth assigned), then ``--calls`` calls of each tool after
five unmeasured ones. Prints CPU ms per call (``time.process_time``: the whole process,
so the outbox worker's share of a call is in it) per tool and library size. A call
that answers with an error stops the run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import media_buy_args  # noqa: E402 - the scripts directory is not a package

TOKEN = "adcp_benchmark_token_0123456789abcdefgh"
Case = Callable[[int], tuple[str, dict[str, Any]]]


def _creative(creative_id: str) -> dict[str, Any]:
    return {
        "creative_id": creative_id,
        "name": f"Banner {creative_id}",
        "format_id": {"agent_url": "http://bench/mcp", "id": "display_300x250"},
        "assets": {
            "banner_image": {
                "asset_type": "image",
                "url": f"https://cdn.bench.example/{creative_id}.png",
                "width": 300,
                "height": 250,
            },
            "clickthrough_url": {
                "asset_type": "url",
                "url_type": "clickthrough",
                "url": "https://bench.example/landing",
            },
        },
    }


class InProcess:
    """The app, called through ASGI with one JSON-RPC tools/call at a time."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.ids = itertools.count()

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": next(self.ids),
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            }
        ).encode()
        headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json, text/event-stream"),
            (b"authorization", f"Bearer {TOKEN}".encode()),
            (b"mcp-protocol-version", b"2025-06-18"),
            (b"content-length", str(len(body)).encode()),
        ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/mcp/",
            "raw_path": b"/mcp/",
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 5555),
            "server": ("127.0.0.1", 8000),
        }
        sent: list[dict[str, Any]] = []
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        raw = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        answer = json.loads(raw)
        result = answer.get("result") or {}
        if sent[0]["status"] != 200 or "error" in answer or result.get("isError"):
            raise RuntimeError(f"{tool} failed: {raw[:600]!r}")
        return result["structuredContent"]


def cases(buys: list[tuple[str, str]]) -> dict[str, Case]:
    keys = itertools.count()

    def key(prefix: str) -> str:
        return f"{prefix}-{next(keys):012d}"

    return {
        "get_adcp_capabilities": lambda i: ("get_adcp_capabilities", {}),
        "get_products": lambda i: (
            "get_products",
            {"brief": "sports fans", "buying_mode": "brief"},
        ),
        "list_creative_formats": lambda i: ("list_creative_formats", {}),
        "get_signals": lambda i: ("get_signals", {"signal_spec": "commuters"}),
        "create_media_buy": lambda i: ("create_media_buy", media_buy_args(key("bench-create"))),
        "get_media_buys": lambda i: ("get_media_buys", {"media_buy_ids": [buys[i % 40][0]]}),
        "get_media_buy_delivery": lambda i: (
            "get_media_buy_delivery",
            {"media_buy_ids": [buys[i % 40][0]]},
        ),
        "update_media_buy (a package budget)": lambda i: (
            "update_media_buy",
            {
                "media_buy_id": buys[i % 40][0],
                "packages": [{"package_id": buys[i % 40][1], "budget": 1000 + i}],
                "idempotency_key": key("bench-update"),
            },
        ),
        "sync_creatives (1 + 1 assignment)": lambda i: (
            "sync_creatives",
            {
                "creatives": [_creative(f"bench-{i}")],
                "assignments": [{"creative_id": f"bench-{i}", "package_id": buys[i % 40][1]}],
                "idempotency_key": key("bench-sync"),
            },
        ),
        "list_creatives (page of 50)": lambda i: ("list_creatives", {}),
        "list_creatives (one buy's)": lambda i: (
            "list_creatives",
            {"filters": {"media_buy_ids": [buys[i % 40][0]]}},
        ),
        "list_tasks (page of 50)": lambda i: ("list_tasks", {}),
    }


async def measure(library: int, calls: int) -> dict[str, float]:
    """CPU ms per call of each case, on a fresh data dir holding ``library`` creatives."""
    from adcp_agent.config import Settings
    from adcp_agent.server import create_app, prepare
    from adcp_agent.state import AppState

    with tempfile.TemporaryDirectory(prefix="tool-cpu-") as data_dir:
        settings = Settings(
            data_dir=data_dir,
            demo_token=TOKEN,
            log_level="warning",
            mcp_rate_limit_per_minute=1_000_000_000,
        )
        state = AppState.from_settings(settings)
        app = create_app(state, startup=await prepare(state))
        client = InProcess(app)
        out: dict[str, float] = {}
        async with app.router.lifespan_context(app):
            buys = []
            for i in range(40):
                seed = media_buy_args(f"bench-seed-{i:08d}")
                booked = await client.call("create_media_buy", seed)
                buys.append((booked["media_buy_id"], booked["packages"][0]["package_id"]))
            for batch in range(0, library, 100):
                ids = [f"lib-{n}" for n in range(batch, min(batch + 100, library))]
                await client.call(
                    "sync_creatives",
                    {
                        "creatives": [_creative(c) for c in ids],
                        "assignments": [
                            {"creative_id": c, "package_id": buys[n % 40][1]}
                            for n, c in enumerate(ids)
                            if n % 10 == 0
                        ],
                        "idempotency_key": f"bench-library-{batch:08d}",
                    },
                )
            for name, make in cases(buys).items():
                for i in range(5):
                    await client.call(*make(calls + i))
                began = time.process_time()
                for i in range(calls):
                    await client.call(*make(i))
                out[name] = 1000 * (time.process_time() - began) / calls
        await state.db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100, help="measured calls per tool")
    parser.add_argument(
        "--library", type=int, nargs="+", default=[200, 2000], help="creatives in the library"
    )
    args = parser.parse_args()
    os.environ.setdefault("ADCP_AGENT_LOG_LEVEL", "warning")
    results = {size: asyncio.run(measure(size, args.calls)) for size in args.library}
    sizes = list(results)
    print(
        f"CPU ms per call, in-process, {args.calls} calls each (Python {sys.version.split()[0]})\n"
    )
    print("| tool | " + " | ".join(f"{s} creatives" for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name in results[sizes[0]]:
        print(f"| {name} | " + " | ".join(f"{results[s][name]:.2f}" for s in sizes) + " |")


if __name__ == "__main__":
    main()
