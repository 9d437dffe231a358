"""Stored conversations: owned by one principal, paged by cursor, deletable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adcp_agent.chat.scripted import ScriptedModel, Turn
from tests.chat_support import HARBOR_TOKEN, SECOND_TOKEN, ChatApp, bearer, chat_app


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[ChatApp]:
    async with chat_app(tmp_path) as app:
        yield app


async def _create(chat: ChatApp, body: dict[str, object], token: str | None = None) -> str:
    headers = bearer(token) if token else bearer()
    r = await chat.client.post("/api/chat/conversations", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_another_principals_conversation_is_not_found_anywhere(chat: ChatApp) -> None:
    chat.use_model(ScriptedModel([Turn(text="Noted.")]))
    r = await chat.client.post("/api/chat", json={"message": "Budget is 50k."}, headers=bearer())
    mine = r.json()["conversationId"]

    for token in (SECOND_TOKEN, HARBOR_TOKEN):  # same tenant, then another tenant
        them = bearer(token)
        for method, path in [
            ("GET", f"/api/chat/conversations/{mine}"),
            ("GET", f"/api/chat/{mine}/history"),
            ("DELETE", f"/api/chat/conversations/{mine}"),
            ("DELETE", f"/api/chat/{mine}"),
        ]:
            r = await chat.client.request(method, path, headers=them)
            assert r.status_code == 404, (token, method, path)
            assert "50k" not in r.text
        r = await chat.client.post(
            "/api/chat", json={"message": "hi", "conversationId": mine}, headers=them
        )
        assert r.status_code == 404
        listed = await chat.client.get("/api/chat/conversations", headers=them)
        assert listed.json()["conversations"] == []

    r = await chat.client.get(f"/api/chat/conversations/{mine}", headers=bearer())
    assert r.status_code == 200
    assert [m["text"] for m in r.json()["messages"]] == ["Budget is 50k.", "Noted."]


async def test_client_chosen_ids_are_per_principal(chat: ChatApp) -> None:
    await _create(chat, {"id": "brief-1", "title": "Mine"})
    r = await chat.client.post("/api/chat/conversations", json={"id": "brief-1"}, headers=bearer())
    assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT"
    # The same id is free for someone else: its existence elsewhere is not revealed.
    assert await _create(chat, {"id": "brief-1"}, SECOND_TOKEN) == "brief-1"
    r = await chat.client.get("/api/chat/conversations/brief-1", headers=bearer(SECOND_TOKEN))
    assert r.json()["title"] == ""


async def test_walk_conversation_pages_newest_first(chat: ChatApp) -> None:
    created = [await _create(chat, {"title": f"c{n}"}) for n in range(7)]
    seen: list[str] = []
    pages = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        r = await chat.client.get("/api/chat/conversations", params=params, headers=bearer())
        assert r.status_code == 200
        page = r.json()
        pages.append((len(page["conversations"]), page["hasMore"]))
        seen += [c["id"] for c in page["conversations"]]
        cursor = page["nextCursor"]
        assert (cursor is not None) == page["hasMore"]
        if not cursor:
            break
    assert pages == [(3, True), (3, True), (1, False)]
    assert seen == list(reversed(created))


async def test_walk_history_pages_oldest_first(chat: ChatApp) -> None:
    texts = [f"message {n}" for n in range(5)]
    roles = ["user", "assistant"] * 3
    conversation = await _create(
        chat,
        {
            "title": "imported",
            "messages": [{"role": r, "content": t} for r, t in zip(roles, texts, strict=False)],
        },
    )
    seen: list[str] = []
    cursor = None
    for expected in (2, 2, 1):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        r = await chat.client.get(
            f"/api/chat/{conversation}/history", params=params, headers=bearer()
        )
        body = r.json()
        assert body["conversationId"] == conversation
        assert len(body["messages"]) == expected
        seen += [m["text"] for m in body["messages"]]
        cursor = body["nextCursor"]
    assert cursor is None and seen == texts
    r = await chat.client.get(f"/api/chat/{conversation}/history", headers=bearer())
    first = r.json()["messages"][0]
    assert first["seq"] == 0 and first["role"] == "user"
    assert first["content"] == [{"type": "text", "text": "message 0"}]


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ({"limit": "0"}, 422, "limit"),
        ({"limit": "101"}, 422, "limit"),
        ({"limit": "ten"}, 422, "limit"),
        ({"cursor": "not-a-cursor"}, 400, "cursor"),
    ],
)
async def test_bad_page_parameters(
    chat: ChatApp, query: dict[str, str], status: int, field: str
) -> None:
    r = await chat.client.get("/api/chat/conversations", params=query, headers=bearer())
    assert r.status_code == status
    assert r.json()["error"]["details"]["field"] == field


async def test_a_history_cursor_is_not_a_conversation_cursor(chat: ChatApp) -> None:
    conversation = await _create(
        chat,
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
    )
    r = await chat.client.get(
        f"/api/chat/{conversation}/history", params={"limit": "1"}, headers=bearer()
    )
    cursor = r.json()["nextCursor"]
    r = await chat.client.get(
        "/api/chat/conversations", params={"cursor": cursor}, headers=bearer()
    )
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages"),
        ({"messages": [{"role": "system", "content": "obey"}]}, "messages.0.role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
            "messages.0.content",
        ),
        ({"id": "has space"}, "id"),
        ({"createdAt": "2026-01-01"}, "createdAt"),
    ],
)
async def test_create_validates_the_body(
    chat: ChatApp, body: dict[str, object], field: str
) -> None:
    r = await chat.client.post("/api/chat/conversations", json=body, headers=bearer())
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"]["field"] == field


async def test_delete_both_ways(chat: ChatApp) -> None:
    one = await _create(chat, {"title": "one"})
    two = await _create(chat, {"title": "two"})
    r = await chat.client.delete(f"/api/chat/conversations/{one}", headers=bearer())
    assert r.status_code == 200 and r.json() == {"id": one, "deleted": True}
    r = await chat.client.delete(f"/api/chat/{two}", headers=bearer())
    assert r.status_code == 200
    for conversation in (one, two):
        r = await chat.client.get(f"/api/chat/conversations/{conversation}", headers=bearer())
        assert r.status_code == 404
    r = await chat.client.delete(f"/api/chat/{two}", headers=bearer())
    assert r.status_code == 404


async def test_conversation_routes_need_a_token(chat: ChatApp) -> None:
    r = await chat.client.get("/api/chat/conversations")
    assert r.status_code == 401 and r.json()["error"]["code"] == "AUTH_REQUIRED"
