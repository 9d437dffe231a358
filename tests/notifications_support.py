"""Helpers for the notification tests: a raw HTTP receiver and a tiny SMTP server on
127.0.0.1, a hand-driven clock, and a publisher with the demo catalog built through the
tenant-management API."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from adcp_agent import demo_catalog
from adcp_agent.db.models_events import EventDelivery, OutboxEvent
from adcp_agent.services import catalog_admin
from adcp_agent.services.outbox_worker import OutboxWorker
from tests.tenant_admin_support import AdminApi, admin_api


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """An HTTP/1.1 endpoint answering scripted statuses (then ``default``); while
    ``hold`` is set it keeps requests waiting, like a receiver that hangs."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: deque[int] = deque()
        self.default = 200
        self.hold: asyncio.Event | None = None
        self.arrived = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.hold is not None:
            self.hold.set()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                if ":" in line:
                    key, _, value = line.partition(":")
                    headers[key.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Received(method, path, headers, body))
            self.arrived.set()
            if self.hold is not None:
                await self.hold.wait()
            status = self.statuses.popleft() if self.statuses else self.default
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class SmtpReceiver:
    """Just enough SMTP (EHLO, MAIL, RCPT, DATA, QUIT) to receive what smtplib sends."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> SmtpReceiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(text: str) -> None:
            writer.write(text.encode() + b"\r\n")

        sender, rcpts = "", []
        say("220 localhost test SMTP")
        try:
            while line := await reader.readline():
                command = line.decode().strip()
                verb = command.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    say("250-localhost\r\n250 8BITMIME")
                elif verb == "MAIL":
                    sender = command.partition(":")[2].strip(" <>")
                    say("250 OK")
                elif verb == "RCPT":
                    rcpts.append(command.partition(":")[2].strip(" <>"))
                    say("250 OK")
                elif verb == "DATA":
                    say("354 go ahead")
                    await writer.drain()
                    data = b""
                    while (chunk := await reader.readline()) not in (b".\r\n", b""):
                        data += chunk
                    self.messages.append((sender, rcpts, data))
                    say("250 OK queued")
                elif verb == "QUIT":
                    say("221 bye")
                    await writer.drain()
                    break
                else:
                    say("250 OK")
                await writer.drain()
        finally:
            writer.close()


@dataclass
class Clock:
    """A UTC clock that moves only when told; starts a minute ahead so every delivery
    written before it is already due."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(minutes=1))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Publisher:
    api: AdminApi
    tenant_id: str
    token: str

    async def mcp(
        self, tool: str, args: dict[str, Any], token: str | None = None
    ) -> dict[str, Any]:
        return await self.api.mcp_result(tool, args, token or self.token)

    async def events(self, **where: Any) -> list[OutboxEvent]:
        async with self.api.state.db.session() as session:
            stmt = select(OutboxEvent).where(OutboxEvent.tenant_id == self.tenant_id)
            for name, value in where.items():
                stmt = stmt.where(getattr(OutboxEvent, name) == value)
            return list((await session.exec(stmt.order_by(OutboxEvent.created_at))).all())

    async def deliveries(self, event_id: str) -> list[EventDelivery]:
        async with self.api.state.db.session() as session:
            stmt = select(EventDelivery).where(EventDelivery.event_id == event_id)
            return list((await session.exec(stmt)).all())

    def worker(self, clock: Clock, **kwargs: Any) -> OutboxWorker:
        return OutboxWorker(
            self.api.state, clock=clock, business_clock=clock, rand=lambda: 0.0, **kwargs
        )


@asynccontextmanager
async def publisher(
    tmp_path: Path, features: dict[str, Any] | None = None, **settings: Any
) -> AsyncIterator[Publisher]:
    """A tenant on the mock ad server with the demo catalog and one buyer; the worker
    is off unless the test turns it on (tests drive it with a clock instead)."""
    settings.setdefault("outbox_worker", False)
    async with admin_api(tmp_path, **settings) as api:
        await api.init_key()
        tenant = await api.create_tenant(tenant_id="pub", subdomain="pub", features=features or {})
        await catalog_admin.load_catalog(
            api.state.db,
            tenant["tenant_id"],
            formats=demo_catalog.FORMATS,
            properties=demo_catalog.PROPERTIES,
            products=demo_catalog.PRODUCTS,
            signals=demo_catalog.SIGNALS,
        )
        buyer = await api.create_principal("pub", principal_id="pub_buyer", name="Acme Media")
        yield Publisher(api, "pub", buyer["access_token"])


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    """Poll ``check`` until it holds, failing after ``seconds`` (never a fixed sleep)."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.02)


async def deliver_all(pub: Publisher, clock: Clock | None = None) -> None:
    """Run a worker (on ``clock``, by default one a minute ahead) until nothing is due."""
    worker = pub.worker(clock or Clock())
    try:
        while await worker.run_once():
            pass
    finally:
        await worker.stop()
