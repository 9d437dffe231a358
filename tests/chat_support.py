"""Helpers for the chat and /api/tools tests: the real app over httpx's ASGITransport
(the lifespan does not run there, so the database is prepared here as ``serve`` does),
a second buyer in the demo tenant, a second publisher, and an SSE parser."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from adcp_agent.chat.model import ChatModel
from adcp_agent.config import Settings
from adcp_agent.server import create_app, prepare
from adcp_agent.services import catalog_admin, tenants
from adcp_agent.state import AppState
from tests.databases import database_settings
from tests.support import DEMO_TOKEN, HARBOR_CATALOG

SECOND_TOKEN = "adcp_test_second_demo_buyer_token_0123"
HARBOR_TOKEN = "adcp_test_harbor_chat_buyer_token_0123"


def bearer(token: str = DEMO_TOKEN) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@dataclass
class ChatApp:
    app: Starlette
    state: AppState
    client: httpx.AsyncClient

    def use_model(self, model: ChatModel) -> None:
        """The seam chat reads its model from (instead of Anthropic)."""
        self.app.state.chat_model = model


async def _extra_callers(state: AppState) -> None:
    await tenants.create_principal(
        state.db,
        tenant_id="demo",
        name="Second Demo Buyer",
        token=SECOND_TOKEN,
        principal_id="demo_second",
    )
    await tenants.create_tenant(
        state.db, state.registry, name="Harbor Radio", subdomain="harbor", tenant_id="harbor"
    )
    await catalog_admin.load_catalog(
        state.db,
        "harbor",
        **HARBOR_CATALOG,
        signals=[],
    )
    await tenants.create_principal(
        state.db,
        tenant_id="harbor",
        name="Harbor buyer",
        token=HARBOR_TOKEN,
        principal_id="harbor_chat_buyer",
    )


@asynccontextmanager
async def chat_app(
    data_dir: Path, *, api_key: str | None = None, model: ChatModel | None = None
) -> AsyncIterator[ChatApp]:
    settings = Settings(
        data_dir=data_dir,
        demo_token=DEMO_TOKEN,
        ANTHROPIC_API_KEY=api_key,
        **database_settings(data_dir),
    )
    state = AppState.from_settings(settings)
    startup = await prepare(state)
    await _extra_callers(state)
    app = create_app(state, startup=startup)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        chat = ChatApp(app, state, client)
        if model is not None:
            chat.use_model(model)
        try:
            yield chat
        finally:
            await state.db.dispose()


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: dict[str, Any]


def parse_sse(body: str) -> list[SseEvent]:
    events = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append(SseEvent(fields["event"], json.loads(fields["data"])))
    return events
