"""``tools/call`` without a throwaway MCP session per request.

In stateless JSON mode the SDK builds, for every POST, a transport, a dispatcher and a
server connection in a task of their own, passes the message through memory streams
and tears it all down again: ~1 ms of CPU a call, as much as a whole booking's SQL.
This wrapper sits where that transport would be entered (inside FastMCP's HTTP app:
its request context and middleware have run) and answers the one message that
dominates real traffic — a single, well-formed ``tools/call`` on a handshake-era
protocol version — itself: the same security check, the same FastMCP ``call_tool``
(our middleware, argument validation, the tool), the same result normalisation and
JSON-RPC envelope. Anything else (initialize, tools/list, notifications, batches,
``_meta``, the 2026 era, malformed requests and every header the transport would
refuse) goes to the SDK untouched, so it answers exactly as before.
``tests/test_fast_calls.py`` compares both paths response for response."""

from __future__ import annotations

import json
from typing import Any

import mcp.types as mt
from fastmcp import FastMCP
from fastmcp.exceptions import DisabledError, FastMCPError, NotFoundError
from fastmcp.server.http import StreamableHTTPASGIApp
from fastmcp.server.mixins.mcp_operations import _normalize_call_tool_result
from fastmcp.tools.base import ToolResult
from mcp.server.runner import _dump_result
from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import TransportSecurityMiddleware
from mcp_types import DEFAULT_NEGOTIATED_VERSION, JSONRPCResponse
from mcp_types import methods as _methods
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

_VERSION_HEADER = b"mcp-protocol-version"
_SESSION_HEADER = b"mcp-session-id"
_RESPONSE_HEADERS = [(b"content-type", b"application/json")]
_ENDPOINT = StreamableHTTPASGIApp


class FastToolCalls:
    def __init__(self, app: StreamableHTTPASGIApp, mcp: FastMCP) -> None:
        self.app = app
        self.mcp = mcp
        self._security: TransportSecurityMiddleware | None = None
        self.answered = 0  # tools/call requests answered here

    @property
    def security(self) -> TransportSecurityMiddleware:
        """The transport's DNS-rebinding check (its session manager exists once the
        app's lifespan has started)."""
        if self._security is None:
            manager = self.app.session_manager
            settings = manager.security_settings if manager is not None else None
            self._security = TransportSecurityMiddleware(settings)
        return self._security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not _plain(scope):
            await self.app(scope, receive, send)
            return
        body, receive = await _buffered(receive)
        call = _tool_call(body)
        request = Request(scope, receive)
        if call is None or not _acceptable(request):
            await self.app(scope, receive, send)
            return
        if await self.security.validate_request(request, is_post=True) is not None:
            await self.app(scope, receive, send)  # refused there, in its own words
            return
        request_id, name, arguments = call
        self.answered += 1
        result = await self._call(name, arguments)
        # As the SDK's runner, dispatcher and transport shape it: the per-version sieve,
        # the JSON-RPC envelope, its JSON.
        version = request.headers.get("mcp-protocol-version", DEFAULT_NEGOTIATED_VERSION)
        shaped = _methods.serialize_server_result("tools/call", version, _dump_result(result))
        response = JSONRPCResponse(jsonrpc="2.0", id=request_id, result=shaped)
        data = response.model_dump_json(by_alias=True, exclude_unset=True).encode()
        headers = [*_RESPONSE_HEADERS, (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def _call(self, name: str, arguments: dict[str, Any]) -> mt.CallToolResult:
        """As FastMCP's tools/call handler (``_on_call_tool``) answers."""
        try:
            result = await self.mcp.call_tool(name, arguments)
        except (DisabledError, NotFoundError):
            return _error(f"Unknown tool: {name!r}")
        except FastMCPError as exc:
            return _error(str(exc))
        if not isinstance(result, ToolResult):  # our tools have no task or guard results
            raise TypeError(f"tool {name!r} answered {type(result).__name__}")
        return _normalize_call_tool_result(result.to_mcp_result())


def _error(text: str) -> mt.CallToolResult:
    return mt.CallToolResult(content=[mt.TextContent(type="text", text=text)], is_error=True)


def _plain(scope: Scope) -> bool:
    """No session, and a protocol version the stateless transport serves."""
    for key, value in scope["headers"]:
        if key == _SESSION_HEADER:
            return False
        if key == _VERSION_HEADER and value.decode("latin-1") not in HANDSHAKE_PROTOCOL_VERSIONS:
            return False
    return True


def _acceptable(request: Request) -> bool:
    """What the transport requires of a JSON-mode POST."""
    content_type = request.headers.get("content-type", "")
    parts = [p.strip() for p in content_type.split(";")[0].split(",")]
    return "application/json" in parts and check_accept_headers(request)[0]


def _tool_call(body: bytes) -> tuple[int | str, str, dict[str, Any]] | None:
    """(id, tool, arguments) of a single well-formed tools/call request, else None."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # (nested past the parser's depth: the SDK says so)
        return None
    if not isinstance(message, dict) or set(message) != {"jsonrpc", "id", "method", "params"}:
        return None
    request_id, params = message["id"], message["params"]
    if (
        message["jsonrpc"] != "2.0"
        or message["method"] != "tools/call"
        or isinstance(request_id, bool)
        or not isinstance(request_id, int | str)
        or not isinstance(params, dict)
        or not set(params) <= {"name", "arguments"}
        or not isinstance(params.get("name"), str)
    ):
        return None
    arguments = params.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return None
    return request_id, params["name"], arguments


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a ``receive`` that gives it again to whoever reads next."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            chunks = []
            replay: list[Message] = [message]
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
            break

    async def again() -> Message:
        return replay.pop(0) if replay else await receive()

    return b"".join(chunks), again


def install_fast_tool_calls(mcp_app: Any, mcp: FastMCP) -> None:
    """Put ``FastToolCalls`` in front of the streamable-HTTP endpoint of ``mcp_app``
    (as ``mcp.http_app(stateless_http=True, json_response=True)`` built it)."""
    [route] = [r for r in mcp_app.routes if isinstance(getattr(r, "app", None), _ENDPOINT)]
    route.app = FastToolCalls(route.app, mcp)
