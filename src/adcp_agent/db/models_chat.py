"""Chat tables: conversations owned by one principal of one tenant, and their messages.

A conversation's public id is unique per owner, not globally, so a client-chosen id can
never collide with (and so reveal) another principal's conversation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from adcp_agent.db.types import json_column, ts_column, utcnow


class ChatConversation(SQLModel, table=True):
    __tablename__ = "chat_conversations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "principal_id", "conversation_id"),
        Index("ix_chat_conversations_owner_updated", "tenant_id", "principal_id", "updated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(max_length=64)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    principal_id: str = Field(foreign_key="principals.principal_id", max_length=64)
    title: str = Field(default="", max_length=200)
    model: str = Field(max_length=64)
    # Next message sequence number; bumped with UPDATE ... RETURNING so concurrent
    # writers can never hand out the same number.
    message_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class ChatMessageRecord(SQLModel, table=True):
    """One message in the model's own terms: role plus content blocks (text, tool_use,
    tool_result), so a stored conversation can be replayed to the model as it was."""

    __tablename__ = "chat_messages"
    __table_args__ = (UniqueConstraint("conversation_pk", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_pk: int = Field(foreign_key="chat_conversations.id")
    seq: int
    role: str = Field(max_length=20)
    content: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
