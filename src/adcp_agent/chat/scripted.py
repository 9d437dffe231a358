"""A scripted ``ChatModel`` for tests and demos without a provider (the idea of
pydantic-ai's TestModel/FunctionModel): each call plays the next scripted turn.

A turn is either a ``Turn`` (text, streamed in the given chunks, then tool calls) or an
async function of the request, for turns that must look at what the model was sent or
wait on the test. Every request is recorded so tests can assert what the model saw."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from adcp_agent.chat.messages import TextBlock, ToolUseBlock, Usage
from adcp_agent.chat.model import ModelRequest, ModelResponse, TextSink

TurnFunction = Callable[[ModelRequest, TextSink], Awaitable[ModelResponse]]


@dataclass(frozen=True)
class ToolCall:
    name: str
    input: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Turn:
    text: str | Sequence[str] = ()
    tool_calls: Sequence[ToolCall] = ()
    usage: Usage = Usage(input_tokens=100, output_tokens=20)
    stop_reason: str | None = None  # default: tool_use when calling tools, else end_turn


class ScriptExhausted(AssertionError):
    """The loop asked for more turns than the test scripted."""


class ScriptedModel:
    def __init__(self, turns: Sequence[Turn | TurnFunction]) -> None:
        self._turns = list(turns)
        self.requests: list[ModelRequest] = []

    @property
    def remaining(self) -> int:
        return len(self._turns) - len(self.requests)

    async def respond(self, request: ModelRequest, on_text: TextSink) -> ModelResponse:
        index = len(self.requests)
        self.requests.append(request)
        if index >= len(self._turns):
            raise ScriptExhausted(f"the script has {len(self._turns)} turns; turn {index + 1} ran")
        turn = self._turns[index]
        if not isinstance(turn, Turn):
            return await turn(request, on_text)
        chunks = [turn.text] if isinstance(turn.text, str) else list(turn.text)
        for chunk in chunks:
            await on_text(chunk)
        content: list[TextBlock | ToolUseBlock] = []
        text = "".join(chunks)
        if text:
            content.append(TextBlock(text=text))
        for n, call in enumerate(turn.tool_calls):
            call_id = call.id or f"toolu_{index + 1:02d}_{n + 1:02d}"
            content.append(ToolUseBlock(id=call_id, name=call.name, input=call.input))
        stop = turn.stop_reason or ("tool_use" if turn.tool_calls else "end_turn")
        return ModelResponse(content, stop, turn.usage)
