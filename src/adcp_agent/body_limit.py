"""A ceiling on request bodies. Without one a single request of 100 MB was read, parsed
and held whole (the server's RSS went from 130 to 450 MiB), and a few at once could
take the memory. A declared ``Content-Length`` over the limit is refused before the
body is held (read and dropped up to ``DRAIN_BYTES``, so the client gets the answer);
a body sent without one (chunked) is read here and refused once it passes the limit,
before the application sees any of it. The refusal speaks the route's language: a
JSON-RPC error under ``/mcp``, the REST error envelope elsewhere."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adcp_agent.asgi_refusals import error_body, send_json
from adcp_agent.errors import AdcpError

DRAIN_BYTES = 64 * 1024 * 1024  # an over-limit body up to this is read and dropped


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:  # (h11 holds the client to it)
            if declared > self.max_bytes:
                if declared <= DRAIN_BYTES:
                    # Read and drop it, so that the client, still sending, reads the
                    # answer rather than a reset connection; a bigger one is cut off.
                    while (await receive()).get("more_body", False):
                        pass
                await self._refuse(scope, send)
                return
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked, or no body): read it here, up to the limit, and
        # hand it on whole; a handler may catch any exception its body read raises.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def again() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # (a disconnect, while the answer streams)

        await self.app(scope, again, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        error = AdcpError(
            "INVALID_REQUEST",
            f"The request body is larger than the {self.max_bytes:,} bytes this server accepts.",
            field="body",
            details={"max_bytes": self.max_bytes},
            http_status=413,
        )
        path = scope["path"]
        mcp = path == "/mcp" or path.startswith("/mcp/")
        body = error_body(error, jsonrpc_code=-32600 if mcp else None)
        # "connection: close": the rest of the body is not read.
        await send_json(send, 413, body, [(b"connection", b"close")])


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
