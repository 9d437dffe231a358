"""Calling one tool of another agent over MCP streamable HTTP (a buyer's governance
agent's ``check_governance``).

A small client of the transport, not the SDK's: the connection must go to the address
the SSRF guard checked (``ssrf``: pinned, with the real Host header and TLS name, no
redirects), the whole exchange must fit one deadline, and an answer is read only up to
a bound. It speaks the protocol the way the SDK's client does: ``initialize``
(keeping the server's ``Mcp-Session-Id``), ``notifications/initialized``, then
``tools/call``; each answer may come as JSON or as a server-sent event stream, in which
the response is the message carrying the request's id. The session is closed with a
``DELETE`` when the server gave one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from adcp_agent.services import ssrf

PROTOCOL_VERSION = "2025-06-18"
MAX_ANSWER_BYTES = 1 << 20
CLIENT_INFO = {"name": "adcp-agent", "version": "1"}


class CallFailed(Exception):
    """No answer from the agent: unreachable, refused, timed out, not MCP, too big."""


@dataclass(frozen=True)
class ToolAnswer:
    """What the tool answered: its structured content (or the JSON of its first text
    block), and whether it reported an error."""

    content: dict[str, Any]
    is_error: bool


@dataclass
class _Exchange:
    client: httpx.AsyncClient
    target: ssrf.Destination
    headers: dict[str, str]
    session_id: str | None = None
    next_id: int = 1

    async def post(self, message: dict[str, Any]) -> dict[str, Any] | None:
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        request = ssrf.pinned_request(
            self.client, "POST", self.target, headers, json.dumps(message).encode()
        )
        response = await self.client.send(request, stream=True)
        try:
            if response.status_code >= 300:
                text = (await _read(response, 300)).decode("utf-8", "replace").strip()
                raise CallFailed(
                    f"{message.get('method')}: HTTP {response.status_code}"
                    + (f": {text}" if text else "")
                )
            self.session_id = response.headers.get("mcp-session-id") or self.session_id
            if "id" not in message:
                return None  # a notification: 202, nothing to read
            kind = response.headers.get("content-type", "").split(";")[0].strip()
            if kind == "text/event-stream":
                return await _from_events(response, message["id"])
            return _response(_json(await _read(response, MAX_ANSWER_BYTES)), message["id"])
        finally:
            await response.aclose()

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        ident, self.next_id = self.next_id, self.next_id + 1
        answer = await self.post(
            {"jsonrpc": "2.0", "id": ident, "method": method, "params": params}
        )
        assert answer is not None
        if "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            raise CallFailed(f"{method}: {error.get('message') or 'JSON-RPC error'}")
        result = answer.get("result")
        if not isinstance(result, dict):
            raise CallFailed(f"{method}: the answer has no result")
        return result


async def _read(response: httpx.Response, limit: int) -> bytes:
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            if limit < MAX_ANSWER_BYTES:
                return body[:limit]
            raise CallFailed(f"the answer is larger than {limit} bytes")
    return body


def _json(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise CallFailed("the answer is not JSON") from None


def _response(message: Any, ident: int) -> dict[str, Any]:
    if isinstance(message, dict) and message.get("id") == ident:
        return message
    raise CallFailed("the answer is not this request's JSON-RPC response")


async def _from_events(response: httpx.Response, ident: int) -> dict[str, Any]:
    """The JSON-RPC response to ``ident`` in a server-sent event stream (notifications
    and requests the server sends first are skipped)."""
    read, data = 0, []
    async for line in response.aiter_lines():
        read += len(line) + 1
        if read > MAX_ANSWER_BYTES:
            raise CallFailed(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line and data:
            message = _json("\n".join(data))
            data = []
            if isinstance(message, dict) and message.get("id") == ident and "method" not in message:
                return message
    raise CallFailed("the event stream ended without this request's response")


def _tool_answer(result: dict[str, Any]) -> ToolAnswer:
    content = result.get("structuredContent")
    if not isinstance(content, dict):
        blocks = result.get("content") or []
        text = next(
            (b.get("text") for b in blocks if isinstance(b, dict) and b.get("type") == "text"),
            None,
        )
        content = _json(text) if isinstance(text, str) else None
    if not isinstance(content, dict):
        raise CallFailed("the tool answered no JSON object")
    return ToolAnswer(content, bool(result.get("isError")))


async def call_tool(
    url: str,
    tool: str,
    arguments: dict[str, Any],
    *,
    headers: dict[str, str],
    allowance: ssrf.Allowance,
    tls: ssl.SSLContext,
    seconds: float,
    resolver: ssrf.Resolver = ssrf.system_resolver,
) -> ToolAnswer:
    """Call ``tool`` at the MCP endpoint ``url``; ``CallFailed`` (or
    ``ssrf.BlockedDestination``) when no answer came."""
    try:
        async with asyncio.timeout(seconds):
            target = await ssrf.resolve(url, allowance, resolver)
            async with httpx.AsyncClient(
                verify=tls, timeout=seconds, follow_redirects=False, trust_env=False
            ) as client:
                exchange = _Exchange(client, target, headers)
                init = await exchange.request(
                    "initialize",
                    {
                        "protocolVersion": PROTOCOL_VERSION,
                        "capabilities": {},
                        "clientInfo": CLIENT_INFO,
                    },
                )
                version = init.get("protocolVersion")
                if isinstance(version, str):
                    exchange.headers["MCP-Protocol-Version"] = version
                await exchange.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
                try:
                    result = await exchange.request(
                        "tools/call", {"name": tool, "arguments": arguments}
                    )
                finally:
                    if exchange.session_id:
                        await _close(exchange)
                return _tool_answer(result)
    except TimeoutError:
        raise CallFailed(f"no answer within {seconds:g} s") from None
    except (httpx.HTTPError, ConnectionError) as exc:
        raise CallFailed(
            f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        ) from exc


async def _close(exchange: _Exchange) -> None:
    headers = {**exchange.headers, "Mcp-Session-Id": exchange.session_id or ""}
    request = ssrf.pinned_request(exchange.client, "DELETE", exchange.target, headers)
    # The answer is in hand; an unclosed session expires on the agent's side.
    with contextlib.suppress(httpx.HTTPError):
        await exchange.client.send(request)
