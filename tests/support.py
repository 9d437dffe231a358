"""Test helpers: a live server on 127.0.0.1, an MCP client over streamable HTTP, and
the AdCP 3.1 schema oracle."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from adcp_agent.config import Settings
from adcp_agent.server import create_app, prepare
from adcp_agent.state import AppState

DEMO_TOKEN = "adcp_test_demo_token_0123456789abcdef"
# A JSON-RPC request sent as text, as the demo buyer: for what an SDK client would refuse
# to send (a lone surrogate, NaN) or would not let a test see (the raw HTTP answer).
RAW_HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "authorization": f"Bearer {DEMO_TOKEN}",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    base_url: str
    data_dir: Path
    settings: Settings
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp/"

    def cli_env(self) -> dict[str, str]:
        """Environment for an ``adcp-agent`` subprocess working on this server's
        database (``--data-dir`` finds SQLite; Postgres needs ``DATABASE_URL``)."""
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        if self.settings.database_url:
            env["DATABASE_URL"] = self.settings.database_url
        return env


class ServerThread:
    """uvicorn in a background thread with its own event loop."""

    def __init__(self, settings: Settings, setup: Callable[[AppState], Any] | None = None):
        self.settings = settings
        self.setup = setup
        self.server: uvicorn.Server | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None
        self.setup_result: Any = None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by start()
            self.error = exc

    async def _main(self) -> None:
        state = AppState.from_settings(self.settings)
        startup = await prepare(state)
        if self.setup is not None:
            self.setup_result = await self.setup(state)
        app = create_app(state, startup=startup)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.settings.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        await self.server.serve()

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        url = f"http://127.0.0.1:{self.settings.port}/health"
        while time.monotonic() < deadline:
            if self.error is not None:
                raise RuntimeError("server failed to start") from self.error
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become healthy within 30 s")

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(timeout=10)


def start_live_server(
    data_dir: Path, setup: Callable[[AppState], Any] | None = None, **database: str
) -> tuple[ServerThread, LiveServer]:
    """A server of our own on 127.0.0.1 (stop the thread when done): the demo tenant,
    whatever ``setup`` adds, and ``database`` settings (tests.databases.database_settings;
    nothing means SQLite in ``data_dir``)."""
    port = free_port()
    settings = Settings(data_dir=data_dir, port=port, demo_token=DEMO_TOKEN, **database)  # type: ignore[arg-type]
    thread = ServerThread(settings, setup=setup)
    thread.start()
    return thread, LiveServer(f"http://127.0.0.1:{port}", data_dir, settings)


@dataclass
class ToolCall:
    is_error: bool
    data: dict[str, Any]

    @property
    def error_codes(self) -> list[str]:
        return [e["code"] for e in self.data.get("errors", [])]

    @property
    def error(self) -> dict[str, Any]:
        return self.data["errors"][0]


def mcp_client(
    url: str,
    token: str | None = None,
    header: str = "authorization",
    extra_headers: dict[str, str] | None = None,
) -> Client:
    headers = dict(extra_headers or {})
    if token is not None:
        headers[header] = f"Bearer {token}" if header == "authorization" else token
    return Client(StreamableHttpTransport(url, headers=headers))


async def call(client: Client, tool: str, args: dict[str, Any] | None = None) -> ToolCall:
    result = await client.call_tool(tool, args or {}, raise_on_error=False)
    assert result.structured_content is not None, f"{tool} returned no structured content"
    return ToolCall(result.is_error, result.structured_content)


def assert_valid(tool: str, payload: dict[str, Any]) -> None:
    """The AdCP 3.1 conformance oracle (the official schemas in the `adcp` package)."""
    from adcp.validation.schema_validator import validate_response

    outcome = validate_response(tool, payload, version="3.1")
    assert outcome.valid, [(i.pointer, i.message) for i in outcome.issues]


# The second publisher used by isolation tests: one radio product, its format and station.
HARBOR_CATALOG: dict[str, Any] = {
    "formats": [
        {
            "format_id": "audio_15s",
            "name": "Audio 15s",
            "kind": "audio",
            "durations_s": [15],
            "mime_types": ["audio/mpeg"],
        }
    ],
    "properties": [
        {
            "property_id": "harbor_fm",
            "property_type": "radio",
            "name": "Harbor FM",
            "publisher_domain": "harborradio.example",
            "identifiers": [{"type": "station_id", "value": "WHBR"}],
        }
    ],
    "products": [
        {
            "product_id": "harbor_drive_time",
            "name": "Harbor FM Drive Time Sports",
            "description": "Morning drive-time sports talk audio spots.",
            "channels": ["radio"],
            "delivery_type": "non_guaranteed",
            "format_ids": ["audio_15s"],
            "property_ids": ["harbor_fm"],
            "pricing_options": [{"pricing_option_id": "harbor_cpm", "floor_price": 4.0}],
        }
    ],
}


async def audit_row(settings: Settings, target_id: str, action: str) -> Any:
    """The one audit row ``action`` recorded about ``target_id``."""
    from adcp_agent.db.models import AuditLog

    where = (AuditLog.target_id == target_id, AuditLog.action == action)
    [row] = await stored_rows(settings, AuditLog, *where)
    return row


async def stored_rows(settings: Settings, model: Any, *where: Any) -> list[Any]:
    """The rows of ``model`` matching ``where`` in the database of a server started with
    ``settings``, read over a connection of the test's own."""
    from sqlmodel import select

    from adcp_agent.db.engine import create_database

    db = create_database(settings.resolved_database_url())
    try:
        async with db.session() as session:
            return list((await session.exec(select(model).where(*where))).all())
    finally:
        await db.dispose()


async def raw_tool_call(
    http: httpx.AsyncClient, url: str, tool: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """The JSON-RPC answer to ``tools/call`` sent as JSON text (``json.dumps``: a lone
    surrogate as its \\u escape, NaN as NaN), with ``http``'s headers (RAW_HEADERS)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
    body["params"] = {"name": tool, "arguments": arguments}
    response = await http.post(url, content=json.dumps(body))
    assert response.status_code == 200, (tool, response.text[:300])
    answer: dict[str, Any] = response.json()
    return answer
