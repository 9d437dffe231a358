"""A Server-Sent Events response that owns its producer.

Unlike ``StreamingResponse`` on ASGI 2.4 servers (which only notices a gone client on
the next write), this watches ``http.disconnect`` while the producer runs, so a model
turn that is still thinking is cancelled at once. The producer is always finished
(completed or cancelled and awaited) before the response returns: no orphaned tasks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
Producer = Callable[[Emit], Awaitable[None]]


def frame(event: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, separators=(",", ":"), default=str)
    return f"event: {event}\ndata: {payload}\n\n".encode()


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(self, produce: Producer) -> None:
        self.produce = produce
        self.status_code = 200
        self.background = None
        self.init_headers(
            {"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        gone = False

        async def emit(event: str, data: dict[str, Any]) -> None:
            nonlocal gone
            if gone:
                return
            try:
                await send(
                    {"type": "http.response.body", "body": frame(event, data), "more_body": True}
                )
            except OSError:  # the client went away mid-write; the watcher cancels the run
                gone = True

        producer = asyncio.create_task(self.produce(emit))
        watcher = asyncio.create_task(_disconnected(receive))
        try:
            await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (producer, watcher):
                task.cancel()
            await asyncio.wait({producer, watcher})
        if producer.cancelled():
            return  # the client left: nothing more to say, and nobody to say it to
        failure = producer.exception()
        if not gone:
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        if failure is not None:
            raise failure


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
