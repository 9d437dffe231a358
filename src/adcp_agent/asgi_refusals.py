"""Answers given in front of the application (the rate limit, the body-size limit), in
the language of the route refused: a JSON-RPC error under ``/mcp``, the REST error
envelope elsewhere."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.types import Send

from adcp_agent.errors import AdcpError


def error_body(error: AdcpError, *, jsonrpc_code: int | None) -> dict[str, Any]:
    """``error`` as a JSON-RPC error with ``jsonrpc_code`` (the REST envelope when None).
    The request id is unknown without reading the body; JSON-RPC allows null here."""
    if jsonrpc_code is None:
        return error.to_rest()
    data = error.to_adcp()
    return {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": jsonrpc_code, "message": error.message, "data": data},
    }


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    payload = json.dumps(body).encode()
    start = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": payload})
