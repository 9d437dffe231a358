"""The Anthropic model: the global switch that keeps every test off the real API, and
the request shape it would send."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from adcp_agent.chat.anthropic_model import (
    AnthropicChatModel,
    RealModelCallBlocked,
    real_model_calls_blocked,
    to_wire,
)
from adcp_agent.chat.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock
from adcp_agent.chat.model import ModelRequest
from tests.chat_support import bearer, chat_app


async def _ignore(_text: str) -> None:
    return None


async def test_the_anthropic_model_refuses_to_run_under_pytest() -> None:
    assert real_model_calls_blocked()
    model = AnthropicChatModel(SecretStr("sk-ant-test-not-a-key"))
    request = ModelRequest(
        model="claude-haiku-4-5-20251001",
        system="",
        messages=[Message.user_text("hi")],
        tools=[],
        max_tokens=256,
    )
    with pytest.raises(RealModelCallBlocked, match="ScriptedModel"):
        await model.respond(request, _ignore)
    assert model._client is None  # blocked before any client (or socket) existed


async def test_a_chat_that_forgot_its_scripted_model_fails_loudly(tmp_path: Path) -> None:
    async with chat_app(tmp_path, api_key="sk-ant-test-not-a-key") as chat:
        with pytest.raises(RealModelCallBlocked):
            await chat.client.post("/api/chat", json={"message": "hi"}, headers=bearer())


def test_history_is_sent_in_the_shape_the_messages_api_accepts() -> None:
    use = ToolUseBlock(id="toolu_1", name="get_products", input={"brief": "radio"})
    wire = to_wire(
        [
            Message.user_text("radio?"),
            Message(role="assistant", content=[TextBlock(text=""), use]),
            Message(
                role="user",
                content=[ToolResultBlock(tool_use_id="toolu_1", content={"status": "completed"})],
            ),
            Message.user_text("and podcasts?"),  # after a run that stopped at a tool result
        ]
    )
    assert [m["role"] for m in wire] == ["user", "assistant", "user"]
    assert wire[1]["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "get_products", "input": {"brief": "radio"}}
    ]
    assert wire[2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_1",
            "content": '{"status":"completed"}',
            "is_error": False,
        },
        {"type": "text", "text": "and podcasts?"},
    ]
