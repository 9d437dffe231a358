"""The model seam. The loop asks a ``ChatModel`` for one turn at a time; providers
(Anthropic, the scripted test model) differ only behind this protocol."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from adcp_agent.chat.messages import Message, TextBlock, ToolUseBlock, Usage
from adcp_agent.tool_executor import ToolSpec

ModelName = Literal[
    "claude-sonnet-5-5",
    "claude-opus-5-5",
    "claude-haiku-5-5",
    "claude-sonnet-4-6",
    # The names seed 002 lists; the first has been retired (see RETIRED_MODELS).
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-5-20251101",
    "claude-haiku-4-5-20251001",
]
DEFAULT_MODEL: ModelName = "claude-sonnet-5-5"

# Models the provider has switched off (end-of-life date), answered by their successor.
# The contract still accepts the old name; responses name the model that actually
# answered, so a client can see the substitution.
RETIRED_MODELS: dict[str, ModelName] = {
    "claude-sonnet-4-5-20250929": DEFAULT_MODEL,  # end-of-life 2026-11-30
}


def serving_model(name: str) -> str:
    """The model that answers a request for ``name``."""
    return RETIRED_MODELS.get(name, name)


TextSink = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class ModelRequest:
    model: str
    system: str
    messages: Sequence[Message]
    tools: Sequence[ToolSpec]
    max_tokens: int


@dataclass(frozen=True)
class ModelResponse:
    content: list[TextBlock | ToolUseBlock]
    # Provider vocabulary: end_turn, tool_use, max_tokens, stop_sequence, refusal...
    stop_reason: str
    usage: Usage


class ChatModel(Protocol):
    async def respond(self, request: ModelRequest, on_text: TextSink) -> ModelResponse:
        """Produce one assistant turn, passing text deltas to ``on_text`` as they arrive.

        A provider failure the user may see (outage, rate limit, rejected key) is raised
        as ``AdcpError``; anything else is a bug and propagates."""
        ...
