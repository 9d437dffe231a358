"""Chat use cases: validate a chat message, bind it to a conversation the caller owns,
and run the loop with storage wired in. REST handlers stay thin on top of this."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from adcp_agent.chat import conversations
from adcp_agent.chat.conversations import ConversationInfo
from adcp_agent.chat.loop import ChatLoop, EventSink, LoopResult, discard_events
from adcp_agent.chat.messages import Message, Usage
from adcp_agent.chat.model import DEFAULT_MODEL, ChatModel, ModelRequest
from adcp_agent.config import Settings
from adcp_agent.db.engine import Database
from adcp_agent.errors import AdcpError
from adcp_agent.services.identity import Caller
from adcp_agent.tool_executor import ToolExecutor, ToolSpec

SYSTEM_PROMPT = """\
You are the advertising sales assistant of {tenant}, talking with the buyer {buyer}.
You act for the buyer through the tools (AdCP 3.1): discover products, creative formats,
properties and audience signals, and take actions only when the buyer asks for them.
Use ids, prices and names exactly as the tools return them; never invent any.
A failed tool call returns an AdCP error with a code, the field at fault and a
suggestion: correct the arguments and retry, or tell the buyer what is blocking.
Answer concisely."""


@dataclass(frozen=True)
class ChatInput:
    message: str
    conversation_id: str | None = None
    model: str = DEFAULT_MODEL
    tool_subset: Sequence[str] | None = None
    max_iterations: int | None = None


@dataclass
class ChatRun:
    """A validated message bound to its conversation, holding that conversation's run
    slot: two runs appending to one history at once would interleave their steps."""

    service: ChatService
    caller: Caller
    conversation: ConversationInfo
    request: ChatInput
    tools: list[ToolSpec]
    max_iterations: int
    _released: bool = field(default=False, repr=False)

    @property
    def conversation_id(self) -> str:
        return self.conversation.id

    async def execute(self, model: ChatModel, emit: EventSink = discard_events) -> LoopResult:
        try:
            return await self.service.execute(self, model, emit)
        finally:
            self.release()

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.service.release(self.conversation.pk)


class ChatService:
    """Runs are serialised per conversation within this process (the slot set below);
    the database's sequence numbers keep the history consistent regardless."""

    def __init__(self, db: Database, tools: ToolExecutor, settings: Settings) -> None:
        self.db = db
        self.tools = tools
        self.settings = settings
        self._busy: set[int] = set()

    async def start(self, caller: Caller, chat: ChatInput) -> ChatRun:
        caller.require_principal()
        available = await self.tools.list_tools()
        names = [t.name for t in available]
        selected = available
        if chat.tool_subset is not None:
            unknown = [n for n in chat.tool_subset if n not in names]
            if unknown:
                raise AdcpError(
                    "VALIDATION_ERROR",
                    f"Unknown tool(s) in tool_subset: {', '.join(unknown)}.",
                    field="tool_subset",
                    details={"unknown": unknown, "available": names},
                )
            selected = [t for t in available if t.name in set(chat.tool_subset)]
        if chat.conversation_id is None:
            conversation = await conversations.create(
                self.db, caller, model=chat.model, title=conversations.title_for(chat.message)
            )
        else:
            conversation = await conversations.get(self.db, caller, chat.conversation_id)
        if conversation.pk in self._busy:
            raise AdcpError(
                "CONFLICT",
                "A reply is still being written in this conversation.",
                field="conversationId",
                suggestion="Wait for it to finish, or start a new conversation.",
            )
        self._busy.add(conversation.pk)
        return ChatRun(
            service=self,
            caller=caller,
            conversation=conversation,
            request=chat,
            tools=selected,
            max_iterations=chat.max_iterations or self.settings.chat_max_iterations,
        )

    def release(self, conversation_pk: int) -> None:
        self._busy.discard(conversation_pk)

    async def execute(self, run: ChatRun, model: ChatModel, emit: EventSink) -> LoopResult:
        pk = run.conversation.pk
        _, stored = await conversations.all_messages(self.db, run.caller, run.conversation_id)
        user = Message.user_text(run.request.message)
        await conversations.append(self.db, pk, [user], Usage())

        async def save_step(messages: Sequence[Message], usage: Usage) -> None:
            await conversations.append(self.db, pk, messages, usage)

        loop = ChatLoop(
            model=model,
            tools=self.tools,
            caller=run.caller,
            allowed=frozenset(t.name for t in run.tools),
            save_step=save_step,
            emit=emit,
        )
        request = ModelRequest(
            model=run.request.model,
            system=SYSTEM_PROMPT.format(
                tenant=run.caller.tenant_name,
                buyer=run.caller.principal_name or run.caller.principal_id,
            ),
            messages=(*(s.message for s in stored), user),
            tools=tuple(run.tools),
            max_tokens=self.settings.chat_max_tokens,
        )
        return await loop.run(request, run.max_iterations)
