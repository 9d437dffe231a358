"""``POST /api/chat`` and ``POST /api/chat/stream``: one user message through the
agentic loop, as a JSON answer or as Server-Sent Events.

Stream events, in order: ``start`` {conversationId, model}; then, as they happen,
``text`` {text} deltas and ``tool_call`` {id, name, input} / ``tool_result``
{id, name, result, isError} pairs; finally ``done`` (the same body ``POST /api/chat``
returns) or ``error`` {error, conversationId, stopReason} when the model failed.

If the client disconnects, the run is cancelled at once. What is kept is what the loop
module promises: every completed step (a model turn with its tool results) and the user
message; a turn still streaming is dropped. The conversation stays consistent, so the
next message continues from there."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adcp_agent.chat.loop import ChatEvent, LoopResult, TextEvent, ToolCallEvent
from adcp_agent.chat.model import DEFAULT_MODEL, ChatModel, ModelName, serving_model
from adcp_agent.chat.service import ChatInput, ChatRun, ChatService
from adcp_agent.errors import AdcpError
from adcp_agent.rest import chat_conversations
from adcp_agent.rest.http_io import authenticated_caller, endpoint, read_model
from adcp_agent.rest.sse import Emit, EventStreamResponse
from adcp_agent.state import AppState
from adcp_agent.tool_executor import ToolExecutor

log = logging.getLogger("adcp_agent.chat")

MAX_ITERATIONS = 25


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    message: str = Field(min_length=1, max_length=32_000)
    conversation_id: str | None = Field(default=None, alias="conversationId", max_length=64)
    model: ModelName = DEFAULT_MODEL
    # At least one tool: a stored history with tool calls cannot be replayed to the
    # model without tool definitions.
    tool_subset: list[str] | None = Field(default=None, min_length=1)
    max_iterations: int | None = Field(default=None, ge=1, le=MAX_ITERATIONS)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    def to_input(self) -> ChatInput:
        return ChatInput(
            message=self.message,
            conversation_id=self.conversation_id,
            model=serving_model(self.model),
            tool_subset=self.tool_subset,
            max_iterations=self.max_iterations,
        )


class ChatEndpoints:
    """Which model answers: ``app.state.chat_model`` when set (the seam tests and
    embedders use), else Anthropic when ``ANTHROPIC_API_KEY`` is configured, else 503."""

    def __init__(self, state: AppState, tools: ToolExecutor) -> None:
        self.service = ChatService(state.db, tools, state.settings)
        key = state.settings.anthropic_api_key
        self.anthropic: ChatModel | None = None
        if key is not None and key.get_secret_value().strip():
            # Imported only when chat is configured: the SDK takes over a second to
            # import, a quarter of a cold start that most servers never use.
            from adcp_agent.chat.anthropic_model import AnthropicChatModel

            self.anthropic = AnthropicChatModel(key)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/chat", endpoint(self.chat), methods=["POST"]),
            Route("/api/chat/stream", endpoint(self.stream), methods=["POST"]),
            *chat_conversations.routes(),
        ]

    def model_for(self, request: Request) -> ChatModel:
        injected: ChatModel | None = getattr(request.app.state, "chat_model", None)
        if injected is not None:
            return injected
        if self.anthropic is None:
            raise AdcpError(
                "SERVICE_UNAVAILABLE",
                "Chat is not configured on this server: no model API key is set.",
                suggestion="The operator must set ANTHROPIC_API_KEY and restart the server.",
                recovery="terminal",
            )
        return self.anthropic

    async def _start(self, request: Request) -> tuple[ChatRun, ChatModel]:
        caller = await authenticated_caller(request)
        body = await read_model(request, ChatBody)
        model = self.model_for(request)
        return await self.service.start(caller, body.to_input()), model

    async def chat(self, request: Request) -> Response:
        run, model = await self._start(request)
        result = await run.execute(model)
        return JSONResponse(result_body(run, result))

    async def stream(self, request: Request) -> Response:
        run, model = await self._start(request)

        async def produce(emit: Emit) -> None:
            await emit("start", {"conversationId": run.conversation_id, "model": run.request.model})

            async def forward(event: ChatEvent) -> None:
                name, data = event_frame(event)
                await emit(name, data)

            try:
                result = await run.execute(model, forward)
            except Exception:
                # A bug, not a model failure: say so on the stream, then let it surface.
                log.exception("chat stream failed")
                failure = AdcpError("SERVICE_UNAVAILABLE", "The chat failed unexpectedly.")
                await emit("error", {"error": failure.to_rest()["error"]})
                raise
            if result.error is not None:
                await emit(
                    "error",
                    {
                        "error": result.error.to_rest()["error"],
                        "conversationId": run.conversation_id,
                        "stopReason": result.stop_reason,
                    },
                )
            else:
                await emit("done", result_body(run, result))

        return EventStreamResponse(produce)


def event_frame(event: ChatEvent) -> tuple[str, dict[str, Any]]:
    if isinstance(event, TextEvent):
        return "text", {"text": event.text}
    if isinstance(event, ToolCallEvent):
        return "tool_call", {"id": event.id, "name": event.name, "input": event.input}
    return "tool_result", {
        "id": event.id,
        "name": event.name,
        "result": event.result,
        "isError": event.is_error,
    }


def result_body(run: ChatRun, result: LoopResult) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message": result.reply,
        "conversationId": run.conversation_id,
        "model": run.request.model,
        "toolCalls": [
            {
                "id": c.id,
                "name": c.name,
                "input": c.input,
                "result": c.result,
                "isError": c.is_error,
            }
            for c in result.tool_calls
        ],
        "usage": {
            "inputTokens": result.usage.input_tokens,
            "outputTokens": result.usage.output_tokens,
        },
        "stopReason": result.stop_reason,
    }
    if result.error is not None:
        body["error"] = result.error.to_rest()["error"]
    return body


def chat_routes(state: AppState, tools: ToolExecutor) -> list[BaseRoute]:
    return ChatEndpoints(state, tools).routes()
