"""The Anthropic Messages API as a ``ChatModel``: streamed text, tool use.

Tests must never reach a real model (no network, no spend, no flakiness), so every call
first checks ``real_model_calls_blocked``: under pytest, or with
``ADCP_AGENT_BLOCK_MODEL_CALLS=1``, it raises ``RealModelCallBlocked`` before it builds a
client (an injected client, e.g. a test's fake transport, is the caller's responsibility).
That error is deliberately not an ``AdcpError``: nothing renders it as a polite chat
failure, so a test that forgot to inject the scripted model fails loudly."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import anthropic
from pydantic import SecretStr

from adcp_agent.chat.messages import (
    Message,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from adcp_agent.chat.model import ModelRequest, ModelResponse, TextSink
from adcp_agent.errors import AdcpError

log = logging.getLogger("adcp_agent.chat")

BLOCK_ENV = "ADCP_AGENT_BLOCK_MODEL_CALLS"


class RealModelCallBlocked(RuntimeError):
    """A real model was about to be called where that is forbidden (tests)."""


def real_model_calls_blocked() -> bool:
    if os.environ.get(BLOCK_ENV, "").lower() in {"1", "true", "yes"}:
        return True
    # pytest sets this for every test phase; it is the one switch no test can forget.
    return "PYTEST_CURRENT_TEST" in os.environ


class AnthropicChatModel:
    def __init__(
        self, api_key: SecretStr, *, client: anthropic.AsyncAnthropic | None = None
    ) -> None:
        self._api_key = api_key
        self._client = client

    def _get_client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            self._client = anthropic.AsyncAnthropic(api_key=self._api_key.get_secret_value())
        return self._client

    async def respond(self, request: ModelRequest, on_text: TextSink) -> ModelResponse:
        # An injected client decides its own transport (tests hand in one whose httpx
        # transport is a local fake); only a client this class builds can reach the API.
        if self._client is None and real_model_calls_blocked():
            raise RealModelCallBlocked(
                f"A real Anthropic call ({request.model}) was attempted while real model "
                f"calls are blocked (pytest or {BLOCK_ENV}). Inject a ScriptedModel instead."
            )
        client = self._get_client()
        params: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "system": request.system,
            "messages": to_wire(request.messages),
        }
        if request.tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                for t in request.tools
            ]
        try:
            async with client.messages.stream(**params) as stream:
                async for event in stream:
                    if event.type == "text":
                        await on_text(event.text)
                final = await stream.get_final_message()
        except anthropic.APIError as exc:
            raise _provider_error(exc) from exc
        content: list[TextBlock | ToolUseBlock] = []
        for block in final.content:
            if block.type == "text" and block.text:
                content.append(TextBlock(text=block.text))
            elif block.type == "tool_use":
                tool_input = block.input if isinstance(block.input, dict) else {}
                content.append(ToolUseBlock(id=block.id, name=block.name, input=tool_input))
        usage = Usage(final.usage.input_tokens, final.usage.output_tokens)
        return ModelResponse(content, final.stop_reason or "end_turn", usage)


def to_wire(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages as the API wants them: consecutive same-role messages merged (a stored
    history may hold a user message after an unanswered one, e.g. after a failed turn)
    and tool results as JSON text."""
    out: list[dict[str, Any]] = []
    for message in messages:
        # The API rejects empty text blocks; an empty turn carries nothing anyway.
        blocks = [
            _wire_block(b) for b in message.content if not (isinstance(b, TextBlock) and not b.text)
        ]
        if not blocks:
            continue
        if out and out[-1]["role"] == message.role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": message.role, "content": blocks})
    return out


def _wire_block(block: TextBlock | ToolUseBlock | ToolResultBlock) -> dict[str, Any]:
    if isinstance(block, ToolResultBlock):
        return {
            "type": "tool_result",
            "tool_use_id": block.tool_use_id,
            "content": json.dumps(block.content, separators=(",", ":"), default=str),
            "is_error": block.is_error,
        }
    return block.model_dump()


def _provider_error(exc: anthropic.APIError) -> AdcpError:
    log.warning("Anthropic call failed: %s", exc)
    if isinstance(exc, anthropic.RateLimitError):
        return AdcpError(
            "RATE_LIMITED",
            "The chat model is rate limited right now.",
            suggestion="Retry in a little while.",
        )
    if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
        return AdcpError(
            "SERVICE_UNAVAILABLE",
            "The chat model rejected this server's API key.",
            suggestion="The operator must set a valid ANTHROPIC_API_KEY.",
            recovery="terminal",
        )
    status = getattr(exc, "status_code", None)
    where = f" (HTTP {status})" if status else ""
    return AdcpError(
        "SERVICE_UNAVAILABLE",
        f"The chat model could not be reached{where}.",
        suggestion="Retry in a little while.",
        recovery="transient",
    )
