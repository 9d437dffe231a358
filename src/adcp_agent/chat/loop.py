"""The agentic loop: ask the model, run the tools it calls as the caller, feed the
results back, and repeat until it answers without tools or the turn budget is spent.

A *step* is one model turn plus the results of the tools it called, and it is saved
whole, so a cancelled run (the client went away) leaves a history the model can resume:

- a turn still streaming when the run is cancelled is dropped: nothing happened yet;
- once a step's first tool has started the step completes regardless: the running tool
  finishes, tools not yet started get a "not run" error result, and the step is saved.
  The history never holds a tool_use without its result, nor hides an effect that
  happened. The cancellation is re-raised afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from adcp_agent import ADCP_VERSION
from adcp_agent.chat.messages import (
    Message,
    ToolCallRecord,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from adcp_agent.chat.model import ChatModel, ModelRequest
from adcp_agent.errors import AdcpError
from adcp_agent.services.identity import Caller
from adcp_agent.tool_executor import ToolExecutor, ToolOutcome

T = TypeVar("T")


@dataclass(frozen=True)
class TextEvent:
    text: str


@dataclass(frozen=True)
class ToolCallEvent:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class ToolResultEvent:
    id: str
    name: str
    result: dict[str, Any]
    is_error: bool


ChatEvent = TextEvent | ToolCallEvent | ToolResultEvent
# Sinks must not raise when the client is gone; the run is cancelled instead.
EventSink = Callable[[ChatEvent], Awaitable[None]]
StepSaver = Callable[[Sequence[Message], Usage], Awaitable[None]]


async def discard_events(_event: ChatEvent) -> None:
    return None


@dataclass(frozen=True)
class LoopResult:
    reply: str  # the text of the last model turn
    tool_calls: list[ToolCallRecord]
    usage: Usage  # summed over every model turn of this run
    stop_reason: str  # end_turn | max_iterations | error | max_tokens | refusal | ...
    error: AdcpError | None = None


@dataclass
class ChatLoop:
    model: ChatModel
    tools: ToolExecutor
    caller: Caller
    allowed: frozenset[str]
    save_step: StepSaver
    emit: EventSink = discard_events

    async def run(self, request: ModelRequest, max_iterations: int) -> LoopResult:
        messages = list(request.messages)
        records: list[ToolCallRecord] = []
        usage = Usage()
        reply = ""
        for _ in range(max_iterations):
            try:
                response = await self.model.respond(
                    replace(request, messages=tuple(messages)), self._on_text
                )
            except AdcpError as exc:
                return LoopResult(reply, records, usage, "error", exc)
            usage += response.usage
            assistant = Message(role="assistant", content=list(response.content))
            reply = assistant.text
            uses = assistant.tool_uses
            if not uses:
                final = [assistant] if assistant.content else []
                await _finish_despite_cancel(self.save_step(final, response.usage))
                return LoopResult(reply, records, usage, response.stop_reason)
            stop = asyncio.Event()
            results, step_records = await _finish_despite_cancel(
                self._step(assistant, uses, response.usage, stop), on_cancel=stop.set
            )
            records += step_records
            messages += [assistant, results]
        return LoopResult(reply, records, usage, "max_iterations")

    async def _on_text(self, text: str) -> None:
        await self.emit(TextEvent(text))

    async def _step(
        self, assistant: Message, uses: list[ToolUseBlock], usage: Usage, stop: asyncio.Event
    ) -> tuple[Message, list[ToolCallRecord]]:
        blocks: list[ToolResultBlock] = []
        records: list[ToolCallRecord] = []
        for use in uses:
            if stop.is_set():
                outcome = ToolOutcome(True, failure_payload(_not_run()))
            else:
                await self.emit(ToolCallEvent(use.id, use.name, use.input))
                outcome = await self._call(use)
                if not stop.is_set():
                    await self.emit(
                        ToolResultEvent(use.id, use.name, outcome.data, outcome.is_error)
                    )
            blocks.append(
                ToolResultBlock(tool_use_id=use.id, content=outcome.data, is_error=outcome.is_error)
            )
            records.append(
                ToolCallRecord(use.id, use.name, use.input, outcome.data, outcome.is_error)
            )
        results = Message(role="user", content=list(blocks))
        await self.save_step([assistant, results], usage)
        return results, records

    async def _call(self, use: ToolUseBlock) -> ToolOutcome:
        if use.name not in self.allowed:
            # The model only sees the allowed tools, but it may still name another one.
            return ToolOutcome(
                True,
                failure_payload(
                    AdcpError(
                        "INVALID_REQUEST",
                        f"Tool '{use.name}' is not available in this chat.",
                        field="name",
                        suggestion="Use one of: " + ", ".join(sorted(self.allowed)) + ".",
                    )
                ),
            )
        return await self.tools.call(self.caller, use.name, use.input)


def failure_payload(error: AdcpError) -> dict[str, Any]:
    """The same failure shape the MCP tools return, so the model reads one format."""
    return {
        "status": "failed",
        "adcp_version": ADCP_VERSION,
        "errors": [error.to_adcp()],
        "adcp_error": error.to_adcp(),
    }


def _not_run() -> AdcpError:
    return AdcpError(
        "SERVICE_UNAVAILABLE",
        "Not run: the chat was stopped before this call started.",
        recovery="transient",
    )


async def _finish_despite_cancel(
    work: Awaitable[T], on_cancel: Callable[[], None] | None = None
) -> T:
    """Run ``work`` to completion even if the caller is cancelled meanwhile (a started
    tool batch and a step's write must not be half-done), then re-raise the cancel."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            if on_cancel is not None:
                on_cancel()
            continue
        break
    if cancelled:
        raise asyncio.CancelledError
    return result
