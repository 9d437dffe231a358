"""Stored chat conversations, always those of the calling principal: list (cursor pages,
latest activity first), create, read, history (cursor pages, oldest first), delete.
Someone else's conversation id answers 404 exactly like one that never existed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adcp_agent.chat import conversations
from adcp_agent.chat.conversations import ConversationInfo, StoredMessage
from adcp_agent.chat.messages import Message
from adcp_agent.chat.model import DEFAULT_MODEL, ModelName, serving_model
from adcp_agent.rest.http_io import (
    app_state,
    authenticated_caller,
    endpoint,
    page_params,
    read_model,
)


class ImportedMessage(BaseModel):
    """Only text can be imported: tool calls and results are written by the loop alone,
    so a stored history always pairs every tool_use with its real result."""

    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=32_000)


class CreateConversationBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    title: str | None = Field(default=None, max_length=200)
    model: ModelName = DEFAULT_MODEL
    messages: list[ImportedMessage] = Field(default_factory=list, max_length=1000)

    @field_validator("messages")
    @classmethod
    def _starts_with_user(cls, value: list[ImportedMessage]) -> list[ImportedMessage]:
        if value and value[0].role != "user":
            raise ValueError("the first message must be the user's")
        return value


def routes() -> list[BaseRoute]:
    return [
        Route("/api/chat/conversations", endpoint(list_conversations), methods=["GET"]),
        Route("/api/chat/conversations", endpoint(create_conversation), methods=["POST"]),
        Route("/api/chat/conversations/{id}", endpoint(get_conversation), methods=["GET"]),
        Route("/api/chat/conversations/{id}", endpoint(delete_conversation), methods=["DELETE"]),
        Route("/api/chat/{id}/history", endpoint(history), methods=["GET"]),
        Route("/api/chat/{id}", endpoint(delete_conversation), methods=["DELETE"]),
    ]


async def list_conversations(request: Request) -> Response:
    caller = await authenticated_caller(request)
    limit, cursor = page_params(request, default_limit=20)
    page = await conversations.list_page(app_state(request).db, caller, limit=limit, cursor=cursor)
    return JSONResponse(
        {
            "conversations": [summary(c) for c in page.items],
            "nextCursor": page.next_cursor,
            "hasMore": page.has_more,
        }
    )


async def create_conversation(request: Request) -> Response:
    caller = await authenticated_caller(request)
    body = await read_model(request, CreateConversationBody)
    messages = [
        Message.model_validate({"role": m.role, "content": [{"type": "text", "text": m.content}]})
        for m in body.messages
    ]
    title = body.title
    if title is None:
        title = conversations.title_for(body.messages[0].content) if body.messages else ""
    info = await conversations.create(
        app_state(request).db,
        caller,
        model=serving_model(body.model),
        title=title,
        conversation_id=body.id,
        messages=messages,
    )
    _, stored = await conversations.all_messages(app_state(request).db, caller, info.id)
    return JSONResponse(detail(info, stored), status_code=201)


async def get_conversation(request: Request) -> Response:
    caller = await authenticated_caller(request)
    info, stored = await conversations.all_messages(
        app_state(request).db, caller, request.path_params["id"]
    )
    return JSONResponse(detail(info, stored))


async def history(request: Request) -> Response:
    caller = await authenticated_caller(request)
    limit, cursor = page_params(request, default_limit=50)
    info, page = await conversations.history_page(
        app_state(request).db, caller, request.path_params["id"], limit=limit, cursor=cursor
    )
    return JSONResponse(
        {
            "conversationId": info.id,
            "messages": [message_body(m) for m in page.items],
            "nextCursor": page.next_cursor,
            "hasMore": page.has_more,
        }
    )


async def delete_conversation(request: Request) -> Response:
    caller = await authenticated_caller(request)
    conversation_id = request.path_params["id"]
    await conversations.delete_conversation(app_state(request).db, caller, conversation_id)
    return JSONResponse({"id": conversation_id, "deleted": True})


def summary(info: ConversationInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "title": info.title,
        "model": info.model,
        "createdAt": info.created_at.isoformat(),
        "updatedAt": info.updated_at.isoformat(),
        "messageCount": info.message_count,
        "usage": {"inputTokens": info.usage.input_tokens, "outputTokens": info.usage.output_tokens},
    }


def detail(info: ConversationInfo, stored: list[StoredMessage]) -> dict[str, Any]:
    return {**summary(info), "messages": [message_body(m) for m in stored]}


def message_body(stored: StoredMessage) -> dict[str, Any]:
    return {
        "seq": stored.seq,
        "role": stored.message.role,
        "text": stored.message.text,
        "content": [b.model_dump(mode="json") for b in stored.message.content],
        "createdAt": stored.created_at.isoformat(),
    }
