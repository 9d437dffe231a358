"""Every tool, every argument, a dozen malformed values: the answer is always an AdCP
result — never an unexpected failure, never an HTTP error. A sweep found eleven ways a
malformed value got through (tests/test_bad_input.py has each); this keeps the next
tool honest too, on SQLite and PostgreSQL (a NUL character only broke PostgreSQL)."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.creative_helpers import display
from tests.databases import Backend, database_settings, per_backend
from tests.media_helpers import non_guaranteed
from tests.support import RAW_HEADERS, LiveServer, raw_tool_call, start_live_server


def _sweep_server(factory: pytest.TempPathFactory, backend: Backend) -> Iterator[LiveServer]:
    """A server of this module's own: ~1,500 calls would spend the shared servers'
    per-token rate limit (1,000 a minute) that other tests count on."""
    data_dir = factory.mktemp(f"sweep_{backend}")
    database = database_settings(data_dir, backend)
    thread, server = start_live_server(
        data_dir, None, mcp_rate_limit_per_minute="1000000000", **database
    )
    yield server
    thread.stop()


sweep, sweep_sqlite, sweep_postgres = per_backend("sweep", _sweep_server)


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


MALFORMED: list[Any] = [
    math.nan,
    -math.inf,
    1e308,
    2**63,
    -1,
    "mb_\ud83d",  # half a surrogate pair
    "mb_\x00",
    "9999-12-31",
    "x" * 5000,
    "",
    [],
    {},
    _nested(40),
]
# Nested objects swept field by field (the top-level sweep replaces them whole).
PACKAGE_FIELDS = (
    "product_id", "pricing_option_id", "budget", "bid_price", "impressions", "pacing",
    "targeting_overlay", "creative_ids", "format_ids", "buyer_ref", "context",
)  # fmt: skip
UPDATE_FIELDS = ("package_id", "budget", "bid_price", "impressions", "paused", "pacing",
                 "targeting_overlay", "creative_ids", "end_time")  # fmt: skip
CREATIVE_FIELDS = ("creative_id", "name", "format_id", "assets", "click_url", "tags")
# What no malformed argument may produce: the middleware's answer to a crash in a tool.
CRASHED = "failed unexpectedly"


def _creative() -> dict[str, Any]:
    return {**display("cr_sweep"), "click_url": "https://example.com/landing"}


def _cases(tools: list[dict[str, Any]], buy_id: str, package_id: str) -> list[Any]:
    """(tool, valid arguments, where a malformed value goes) for every argument of every
    tool, and every field of a package and of a creative."""
    cases: list[Any] = []
    for tool in tools:
        names = list(tool["inputSchema"].get("properties", {}))
        valid = {"media_buy_id": buy_id, "package_id": package_id}
        base = {k: v for k, v in valid.items() if k in names}
        if tool["name"] == "create_media_buy":
            base = non_guaranteed()
        cases += [(tool["name"], base, (name,)) for name in names]
    update = {"media_buy_id": buy_id, "packages": [{"package_id": package_id, "budget": 1200}]}
    cases += [("create_media_buy", non_guaranteed(), ("packages", 0, f)) for f in PACKAGE_FIELDS]
    cases += [("update_media_buy", update, ("packages", 0, f)) for f in UPDATE_FIELDS]
    sync = {"creatives": [_creative()], "dry_run": True}
    cases += [("sync_creatives", sync, ("creatives", 0, f)) for f in CREATIVE_FIELDS]
    return cases


async def test_no_malformed_argument_makes_a_tool_fail_unexpectedly(sweep: LiveServer) -> None:
    async with httpx.AsyncClient(headers=RAW_HEADERS, timeout=30) as http:
        booked = await raw_tool_call(http, sweep.mcp_url, "create_media_buy", non_guaranteed())
        content = booked["result"]["structuredContent"]
        buy_id, package_id = content["media_buy_id"], content["packages"][0]["package_id"]
        listing = await http.post(
            sweep.mcp_url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
        )
        cases = _cases(listing.json()["result"]["tools"], buy_id, package_id)
        for tool, valid, where in cases:
            if len(where) > 1:  # a nested case's arguments are valid as they are
                answer = await raw_tool_call(http, sweep.mcp_url, tool, valid)
                assert not answer["result"].get("isError"), (tool, answer["result"])
        crashed: list[tuple[str, str, str]] = []
        calls = 0
        for tool, valid, where in cases:
            for value in MALFORMED:
                args = copy.deepcopy(valid)
                target = args
                for step in where[:-1]:
                    target = target[step]
                target[where[-1]] = value
                if tool == "create_media_buy":
                    args["idempotency_key"] = f"malformed-{calls:012d}"
                answer = await raw_tool_call(http, sweep.mcp_url, tool, args)
                calls += 1
                if "error" in answer or CRASHED in json.dumps(answer["result"]):
                    crashed.append((tool, ".".join(map(str, where)), repr(value)[:40]))
    assert calls > 1000
    assert crashed == [], crashed
