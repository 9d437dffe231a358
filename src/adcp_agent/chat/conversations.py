"""Stored conversations. Every query is scoped to the caller's tenant *and* principal:
a conversation id belonging to someone else is simply not found, so nothing leaks.

Pagination is keyset-based with opaque cursors: conversations newest activity first
(``updated_at``, then id), messages oldest first (``seq``)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from sqlalchemy import and_, delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.chat.messages import Message, Usage
from adcp_agent.db.engine import Database
from adcp_agent.db.models_chat import ChatConversation, ChatMessageRecord
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import audit
from adcp_agent.services.identity import Caller, new_id

T = TypeVar("T")
MAX_LIMIT = 100


@dataclass(frozen=True)
class ConversationInfo:
    pk: int
    id: str
    title: str
    model: str
    message_count: int
    usage: Usage
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StoredMessage:
    seq: int
    message: Message
    created_at: datetime


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def title_for(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else ""
    return first if len(first) <= 80 else first[:79].rstrip() + "…"


async def create(
    db: Database,
    caller: Caller,
    *,
    model: str,
    title: str,
    conversation_id: str | None = None,
    messages: Sequence[Message] = (),
) -> ConversationInfo:
    principal_id = caller.require_principal()
    row = ChatConversation(
        conversation_id=conversation_id or new_id("conv"),
        tenant_id=caller.tenant_id,
        principal_id=principal_id,
        title=title[:200],
        model=model,
        message_count=len(messages),
    )
    async with db.transaction() as session:
        session.add(row)
        try:
            await session.flush()
        except IntegrityError:
            raise AdcpError(
                "CONFLICT",
                f"You already have a conversation '{row.conversation_id}'.",
                field="id",
                suggestion="Pick another id, or omit it to get a generated one.",
            ) from None
        assert row.id is not None
        for seq, message in enumerate(messages):
            session.add(_record(row.id, seq, message))
        await audit.record(
            session,
            caller,
            "chat.conversation.create",
            target_type="chat_conversation",
            target_id=row.conversation_id,
        )
    return _info(row)


async def get(db: Database, caller: Caller, conversation_id: str) -> ConversationInfo:
    async with db.reading() as session:
        return _info(await _owned(session, caller, conversation_id))


async def list_page(
    db: Database, caller: Caller, *, limit: int, cursor: str | None
) -> Page[ConversationInfo]:
    principal_id = caller.require_principal()
    stmt = select(ChatConversation).where(
        ChatConversation.tenant_id == caller.tenant_id,
        ChatConversation.principal_id == principal_id,
    )
    if cursor:
        data = _decode(cursor, "c")
        try:
            after, after_pk = datetime.fromisoformat(data["u"]), int(data["i"])
        except (KeyError, TypeError, ValueError):
            raise _bad_cursor() from None
        stmt = stmt.where(
            or_(
                col(ChatConversation.updated_at) < after,
                and_(
                    col(ChatConversation.updated_at) == after, col(ChatConversation.id) < after_pk
                ),
            )
        )
    stmt = stmt.order_by(
        col(ChatConversation.updated_at).desc(), col(ChatConversation.id).desc()
    ).limit(limit + 1)
    async with db.reading() as session:
        rows = list((await session.exec(stmt)).all())
    items = [_info(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = _encode("c", {"u": last.updated_at.isoformat(), "i": last.pk})
    return Page(items, next_cursor)


async def history_page(
    db: Database, caller: Caller, conversation_id: str, *, limit: int, cursor: str | None
) -> tuple[ConversationInfo, Page[StoredMessage]]:
    after = -1
    if cursor:
        try:
            after = int(_decode(cursor, "m")["s"])
        except (KeyError, TypeError, ValueError):
            raise _bad_cursor() from None
    async with db.reading() as session:
        info = _info(await _owned(session, caller, conversation_id))
        rows = list(
            (
                await session.exec(
                    select(ChatMessageRecord)
                    .where(
                        ChatMessageRecord.conversation_pk == info.pk,
                        col(ChatMessageRecord.seq) > after,
                    )
                    .order_by(col(ChatMessageRecord.seq))
                    .limit(limit + 1)
                )
            ).all()
        )
    items = [_stored(r) for r in rows[:limit]]
    next_cursor = _encode("m", {"s": items[-1].seq}) if len(rows) > limit else None
    return info, Page(items, next_cursor)


async def all_messages(
    db: Database, caller: Caller, conversation_id: str
) -> tuple[ConversationInfo, list[StoredMessage]]:
    async with db.reading() as session:
        info = _info(await _owned(session, caller, conversation_id))
        rows = await session.exec(
            select(ChatMessageRecord)
            .where(ChatMessageRecord.conversation_pk == info.pk)
            .order_by(col(ChatMessageRecord.seq))
        )
        return info, [_stored(r) for r in rows.all()]


async def append(
    db: Database, conversation_pk: int, messages: Sequence[Message], usage: Usage
) -> None:
    """Add messages and token usage atomically. The sequence range is claimed by the
    UPDATE itself, so two writers can never interleave numbers."""
    if not messages and usage == Usage():
        return
    async with db.transaction() as session:
        result = await session.exec(
            update(ChatConversation)
            .where(col(ChatConversation.id) == conversation_pk)
            .values(
                message_count=ChatConversation.message_count + len(messages),
                input_tokens=ChatConversation.input_tokens + usage.input_tokens,
                output_tokens=ChatConversation.output_tokens + usage.output_tokens,
                updated_at=utcnow(),
            )
            .returning(col(ChatConversation.message_count))
        )
        end = result.scalar_one()
        for offset, message in enumerate(messages):
            session.add(_record(conversation_pk, end - len(messages) + offset, message))


async def delete_conversation(db: Database, caller: Caller, conversation_id: str) -> None:
    async with db.transaction() as session:
        row = await _owned(session, caller, conversation_id)
        await session.exec(
            delete(ChatMessageRecord).where(col(ChatMessageRecord.conversation_pk) == row.id)
        )
        await session.delete(row)
        await audit.record(
            session,
            caller,
            "chat.conversation.delete",
            target_type="chat_conversation",
            target_id=conversation_id,
            before={"title": row.title, "message_count": row.message_count},
        )


async def _owned(session: AsyncSession, caller: Caller, conversation_id: str) -> ChatConversation:
    principal_id = caller.require_principal()
    row = (
        await session.exec(
            select(ChatConversation).where(
                ChatConversation.tenant_id == caller.tenant_id,
                ChatConversation.principal_id == principal_id,
                ChatConversation.conversation_id == conversation_id,
            )
        )
    ).first()
    if row is None:
        raise AdcpError(
            "NOT_FOUND", f"Conversation '{conversation_id}' was not found.", field="conversationId"
        )
    return row


def _record(conversation_pk: int, seq: int, message: Message) -> ChatMessageRecord:
    return ChatMessageRecord(
        conversation_pk=conversation_pk,
        seq=seq,
        role=message.role,
        content=[b.model_dump(mode="json") for b in message.content],
    )


def _stored(row: ChatMessageRecord) -> StoredMessage:
    try:
        message = Message.model_validate({"role": row.role, "content": row.content})
    except ValidationError as exc:  # rows are only written from validated messages
        raise RuntimeError(f"chat message {row.id} is corrupt") from exc
    return StoredMessage(row.seq, message, row.created_at)


def _info(row: ChatConversation) -> ConversationInfo:
    assert row.id is not None
    return ConversationInfo(
        pk=row.id,
        id=row.conversation_id,
        title=row.title,
        model=row.model,
        message_count=row.message_count,
        usage=Usage(row.input_tokens, row.output_tokens),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _encode(kind: str, data: dict[str, Any]) -> str:
    raw = json.dumps({"k": kind, **data}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, kind: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        raise _bad_cursor() from None
    if not isinstance(data, dict) or data.get("k") != kind:
        raise _bad_cursor()
    return data


def _bad_cursor() -> AdcpError:
    return AdcpError(
        "INVALID_REQUEST",
        "The cursor is not valid here.",
        field="cursor",
        suggestion="Pass back the nextCursor of the previous page unchanged, or omit it.",
    )
