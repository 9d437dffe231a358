"""The tools/call fast path answers exactly as the SDK's stateless transport would:
the same requests against a server with it and one without give the same status,
headers and bytes (generated ids and times masked), and whatever it does not serve
reaches the SDK untouched."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from adcp_agent.config import Settings
from tests.media_helpers import non_guaranteed
from tests.support import DEMO_TOKEN
from tests.tenant_admin_support import served_app

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
AUTH = {**HEADERS, "authorization": f"Bearer {DEMO_TOKEN}"}
# Generated ids and times differ between two servers; nothing else may.
_VARYING = re.compile(
    rb"\b(mb|pkg|task|push|evt|acct|cr|lease)_[0-9a-f]{8,}\b"
    rb"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"
)


def _call(name: str, arguments: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    return {"jsonrpc": "2.0", "id": extra.pop("id", 1), "method": "tools/call", "params": params}


# (what, headers, body): a body that is not a dict or list is sent as raw bytes.
SERVED: list[tuple[str, dict[str, str], Any]] = [
    ("capabilities", AUTH, _call("get_adcp_capabilities", {})),
    ("no arguments key", AUTH, _call("get_adcp_capabilities")),
    ("string id", AUTH, {**_call("get_adcp_capabilities", {}), "id": "req-1"}),
    ("products", AUTH, _call("get_products", {"brief": "sports video"})),
    ("anonymous discovery", HEADERS, _call("list_creative_formats", {})),
    ("anonymous buying", HEADERS, _call("get_media_buys", {})),
    (
        "unknown token",
        {**HEADERS, "authorization": "Bearer adcp_nope_0000000000000000"},
        _call("get_media_buys", {}),
    ),  # fmt: skip
    ("unknown tool", AUTH, _call("no_such_tool", {})),
    ("hidden sandbox tool", AUTH, _call("comply_test_controller", {"scenario": "list"})),
    ("invalid arguments", AUTH, _call("get_media_buys", {"max_results": "many"})),
    ("missing argument", AUTH, _call("create_media_buy", {})),
    (
        "undeclared argument and context",
        AUTH,
        _call("get_media_buys", {"context": {"trace": "t-1"}, "ext": {"x": 1}}),
    ),  # fmt: skip
    ("booking", AUTH, _call("create_media_buy", non_guaranteed(budget=1000))),
    *(
        (f"protocol {v}", {**AUTH, "mcp-protocol-version": v}, _call("get_adcp_capabilities", {}))
        for v in ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
    ),
]
PASSED_ON: list[tuple[str, dict[str, str], Any]] = [
    ("tools/list", AUTH, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    ("ping", AUTH, {"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    ("notification", AUTH, {"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ("batch", AUTH, [_call("get_adcp_capabilities", {})]),
    (
        "with _meta",
        AUTH,
        {
            **_call("get_adcp_capabilities", {}),
            "params": {
                "name": "get_adcp_capabilities",
                "arguments": {},
                "_meta": {"progressToken": 1},
            },
        },
    ),  # fmt: skip
    ("boolean id", AUTH, {**_call("get_adcp_capabilities", {}), "id": True}),
    (
        "arguments not an object",
        AUTH,
        {**_call("x"), "params": {"name": "get_products", "arguments": [1]}},
    ),  # fmt: skip
    ("not JSON", AUTH, b"{nope"),
    ("no JSON accepted", {**AUTH, "accept": "text/event-stream"}, _call("get_products", {})),
    ("wrong content type", {**AUTH, "content-type": "text/plain"}, _call("get_products", {})),
    ("2026 era", {**AUTH, "mcp-protocol-version": "2026-07-28"}, _call("get_products", {})),
    ("unknown version", {**AUTH, "mcp-protocol-version": "1999-01-01"}, _call("get_products", {})),
    ("a session id", {**AUTH, "mcp-session-id": "abc"}, _call("get_adcp_capabilities", {})),
]


@asynccontextmanager
async def _server(tmp_path: Path, fast: bool) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    settings = Settings(
        data_dir=tmp_path / ("fast" if fast else "sdk"),
        demo_token=DEMO_TOKEN,
        mcp_fast_tool_calls=fast,
        outbox_worker=False,
    )
    async with served_app(settings) as served:
        yield served.http, served.app


def _fast_path(app: Any) -> Any:
    from adcp_agent_tools.fast_calls import FastToolCalls

    mcp_app = app.routes[0].app
    [endpoint] = [r.app for r in mcp_app.routes if isinstance(r.app, FastToolCalls)]
    return endpoint


async def _send(client: httpx.AsyncClient, headers: dict[str, str], body: Any) -> tuple:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post("/mcp/", content=content, headers=headers)
    kept = {k: v for k, v in response.headers.items() if not k.startswith("x-ratelimit")}
    kept.pop("content-length", None)  # (follows the body, compared below)
    return response.status_code, kept, _VARYING.sub(b"<varies>", response.content)


async def test_the_fast_path_answers_as_the_sdk_would(tmp_path: Path) -> None:
    cases = SERVED + PASSED_ON
    async with _server(tmp_path, fast=False) as (sdk, _):
        expected = [await _send(sdk, headers, body) for _, headers, body in cases]
    async with _server(tmp_path, fast=True) as (fast, app):
        answered, by_fast_path = [], []
        endpoint = _fast_path(app)
        for _, headers, body in cases:
            before = endpoint.answered
            answered.append(await _send(fast, headers, body))
            by_fast_path.append(endpoint.answered > before)
    for (what, _, _), want, got in zip(cases, expected, answered, strict=True):
        assert got == want, what
    served = dict(zip((what for what, _, _ in cases), by_fast_path, strict=True))
    assert [w for w, s in served.items() if s] == [w for w, _, _ in SERVED]
    # The cases really exercise something: a booking, errors, the tool list.
    bodies = {what: got[2] for (what, _, _), got in zip(cases, answered, strict=True)}
    assert b'"isError":true' in bodies["unknown tool"]
    assert b"AUTH_REQUIRED" in bodies["anonymous buying"]
    assert b"media_buy_id" in bodies["booking"]
    assert b"create_media_buy" in bodies["tools/list"]
