"""The real ``anthropic`` client against a fake Messages API (an httpx MockTransport that
speaks the streaming wire format), through the whole chat loop: a streamed tool_use, the
tool run against the real MCP tools, the tool_result sent back, the final answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx  # the anthropic SDK's own httpx (it refuses plain httpx)
from pydantic import SecretStr

from adcp_agent.chat.anthropic_model import AnthropicChatModel
from tests.chat_support import bearer, chat_app


def _sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


def _message_start(mid: str) -> tuple[str, dict[str, Any]]:
    return (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": mid,
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-5-5",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 120, "output_tokens": 1},
            },
        },
    )


TOOL_TURN = [
    _message_start("msg_1"),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Checking the catalog."},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_01",
                "name": "get_products",
                "input": {},
            },
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"brief": "radio spots'},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ' for commuters"}'},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 30},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]

ANSWER_TURN = [
    _message_start("msg_2"),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Try audio_streaming_radio."},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 12},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]


async def test_streamed_tool_use_round_trip_through_the_real_client(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    paths: list[tuple[str, bool]] = []

    def messages_api(request: httpx.Request) -> httpx.Response:
        credential = any("sk-test-not-real" in v for v in request.headers.values())
        paths.append((request.url.path, credential))
        body = json.loads(request.content)
        seen.append(body)
        turn = TOOL_TURN if len(seen) == 1 else ANSWER_TURN
        return httpx.Response(
            200, content=_sse(turn), headers={"content-type": "text/event-stream"}
        )

    client = anthropic.AsyncAnthropic(
        api_key="sk-test-not-real",
        base_url="http://anthropic.fake",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(messages_api)),
        max_retries=0,
    )
    model = AnthropicChatModel(SecretStr("sk-test-not-real"), client=client)
    async with chat_app(tmp_path, model=model) as chat:
        r = await chat.client.post(
            "/api/chat", json={"message": "Radio for commuters?"}, headers=bearer()
        )
    assert r.status_code == 200, r.text
    assert paths == [("/v1/messages", True)] * 2, paths
    body = r.json()
    assert body["message"].endswith("Try audio_streaming_radio.")
    assert body["stopReason"] == "end_turn"
    [call] = body["toolCalls"]
    assert call["name"] == "get_products"
    assert call["input"] == {"brief": "radio spots for commuters"}  # reassembled from deltas
    assert call["result"]["products"][0]["product_id"] == "audio_streaming_radio"
    # What the API received: our tools, then the tool_result for toolu_01.
    assert seen[0]["stream"] is True
    assert "get_products" in {t["name"] for t in seen[0]["tools"]}
    result_block = seen[1]["messages"][-1]["content"][0]
    assert result_block["type"] == "tool_result" and result_block["tool_use_id"] == "toolu_01"
    assert "audio_streaming_radio" in result_block["content"]
    assert body["usage"]["outputTokens"] == 42


async def test_provider_errors_become_typed_chat_errors(tmp_path: Path) -> None:
    def overloaded(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            json={"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
        )

    client = anthropic.AsyncAnthropic(
        api_key="k",
        base_url="http://anthropic.fake",
        max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(overloaded)),
    )
    async with chat_app(tmp_path, model=AnthropicChatModel(SecretStr("k"), client=client)) as chat:
        r = await chat.client.post("/api/chat", json={"message": "hi"}, headers=bearer())
    # The turn ends with a typed error the front end can show; the conversation is kept.
    assert r.status_code == 200
    assert r.json()["stopReason"] == "error"
    assert r.json()["error"]["code"] == "RATE_LIMITED"
