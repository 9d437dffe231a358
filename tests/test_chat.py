"""POST /api/chat: the agentic loop over the real MCP tools, driven by a scripted model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adcp_agent.chat import conversations
from adcp_agent.chat.messages import TextBlock, ToolResultBlock, ToolUseBlock, Usage
from adcp_agent.chat.model import ModelRequest, ModelResponse, TextSink
from adcp_agent.chat.scripted import ScriptedModel, ToolCall, Turn
from adcp_agent.errors import AdcpError
from adcp_agent.services.identity import authenticate
from tests.chat_support import HARBOR_TOKEN, ChatApp, bearer, chat_app
from tests.support import DEMO_TOKEN


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[ChatApp]:
    async with chat_app(tmp_path) as app:
        yield app


def _results(request: ModelRequest) -> list[ToolResultBlock]:
    return [b for b in request.messages[-1].content if isinstance(b, ToolResultBlock)]


async def test_loop_calls_get_products_then_answers_with_real_ids(chat: ChatApp) -> None:
    model = ScriptedModel(
        [
            Turn(
                text="Let me look.",
                tool_calls=[ToolCall("get_products", {"brief": "video ads on TV for sports fans"})],
            ),
            Turn(text=["The best fit is ", "ctv_sports_premium."]),
        ]
    )
    chat.use_model(model)
    r = await chat.client.post(
        "/api/chat", json={"message": "Sports video for fans?"}, headers=bearer()
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "The best fit is ctv_sports_premium."
    assert body["stopReason"] == "end_turn"
    assert body["model"] == "claude-sonnet-5-5"
    assert body["usage"] == {"inputTokens": 200, "outputTokens": 40}
    [call] = body["toolCalls"]
    assert call["name"] == "get_products" and call["isError"] is False
    ids = [p["product_id"] for p in call["result"]["products"]]
    # Real catalog rows, seen with the buyer's rights (the private deal is included).
    assert set(ids[:2]) == {"ctv_sports_premium", "ctv_private_upfront"}
    # The model's second turn saw the same payload as a tool_result.
    [seen] = _results(model.requests[1])
    assert seen.tool_use_id == call["id"] and not seen.is_error
    assert seen.content["products"][0]["product_id"] in ids
    assert [t.name for t in model.requests[0].tools][:2] == [
        "get_adcp_capabilities",
        "get_products",
    ]
    # The whole exchange is stored, in order, with its token usage.
    caller = await authenticate(chat.state.db, DEMO_TOKEN)
    info, stored = await conversations.all_messages(chat.state.db, caller, body["conversationId"])
    assert [(s.message.role, [b.type for b in s.message.content]) for s in stored] == [
        ("user", ["text"]),
        ("assistant", ["text", "tool_use"]),
        ("user", ["tool_result"]),
        ("assistant", ["text"]),
    ]
    assert info.title == "Sports video for fans?"
    assert info.usage == Usage(200, 40)


async def test_adcp_error_is_fed_back_so_the_model_can_correct_itself(chat: ChatApp) -> None:
    async def corrects(request: ModelRequest, on_text: TextSink) -> ModelResponse:
        [failure] = _results(request)
        assert failure.is_error
        error = failure.content["adcp_error"]
        assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "filters.delivery_type")
        fixed = {"filters": {"delivery_type": "guaranteed"}}
        return ModelResponse(
            [ToolUseBlock(id="toolu_fix", name="get_products", input=fixed)], "tool_use", Usage()
        )

    model = ScriptedModel(
        [
            Turn(
                tool_calls=[ToolCall("get_products", {"filters": {"delivery_type": "sometimes"}})]
            ),
            corrects,
            Turn(text="Guaranteed products found."),
        ]
    )
    chat.use_model(model)
    r = await chat.client.post("/api/chat", json={"message": "guaranteed only"}, headers=bearer())
    body = r.json()
    assert r.status_code == 200 and body["stopReason"] == "end_turn"
    first, second = body["toolCalls"]
    assert first["isError"] and first["result"]["errors"][0]["code"] == "VALIDATION_ERROR"
    assert not second["isError"]
    assert {p["delivery_type"] for p in second["result"]["products"]} == {"guaranteed"}


async def test_max_iterations_stops_the_loop(chat: ChatApp) -> None:
    forever = Turn(tool_calls=[ToolCall("list_authorized_properties")])
    model = ScriptedModel([forever] * 30)
    chat.use_model(model)
    r = await chat.client.post(
        "/api/chat", json={"message": "loop", "max_iterations": 3}, headers=bearer()
    )
    assert r.status_code == 200
    assert r.json()["stopReason"] == "max_iterations"
    assert len(r.json()["toolCalls"]) == 3 and len(model.requests) == 3

    default = ScriptedModel([forever] * 30)
    chat.use_model(default)
    r = await chat.client.post("/api/chat", json={"message": "loop"}, headers=bearer())
    assert r.json()["stopReason"] == "max_iterations" and len(default.requests) == 10


async def test_tool_subset_limits_what_the_model_sees_and_can_run(chat: ChatApp) -> None:
    model = ScriptedModel(
        [
            Turn(tool_calls=[ToolCall("list_authorized_properties")]),
            Turn(text="I may only search products."),
        ]
    )
    chat.use_model(model)
    r = await chat.client.post(
        "/api/chat",
        json={"message": "what sites?", "tool_subset": ["get_products"]},
        headers=bearer(),
    )
    assert r.status_code == 200
    assert [t.name for t in model.requests[0].tools] == ["get_products"]
    [call] = r.json()["toolCalls"]
    assert call["isError"]
    assert call["result"]["adcp_error"]["code"] == "INVALID_REQUEST"
    assert "not available" in call["result"]["adcp_error"]["message"]
    assert "properties" not in call["result"]

    r = await chat.client.post(
        "/api/chat",
        json={"message": "x", "tool_subset": ["get_products", "drop_tables"]},
        headers=bearer(),
    )
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["details"]["field"] == "tool_subset"
    assert error["details"]["unknown"] == ["drop_tables"]


async def test_tools_run_with_the_callers_rights_only(chat: ChatApp) -> None:
    model = ScriptedModel(
        [
            Turn(
                tool_calls=[
                    ToolCall("get_products", {"brief": "sports"}),
                    ToolCall("activate_signal", {"signal_agent_segment_id": "sports_enthusiasts"}),
                ]
            ),
            Turn(text="done"),
        ]
    )
    chat.use_model(model)
    r = await chat.client.post(
        "/api/chat", json={"message": "sports"}, headers=bearer(HARBOR_TOKEN)
    )
    products, activation = r.json()["toolCalls"]
    # Another publisher's buyer sees its own catalog and cannot touch the demo signals.
    assert [p["product_id"] for p in products["result"]["products"]] == ["harbor_drive_time"]
    assert activation["isError"]
    assert activation["result"]["adcp_error"]["code"] == "SIGNAL_NOT_FOUND"


async def test_a_conversation_continues_with_its_history(chat: ChatApp) -> None:
    chat.use_model(ScriptedModel([Turn(text="Hello Ann.")]))
    r = await chat.client.post("/api/chat", json={"message": "I am Ann."}, headers=bearer())
    conversation_id = r.json()["conversationId"]

    model = ScriptedModel([Turn(text="You are Ann.")])
    chat.use_model(model)
    r = await chat.client.post(
        "/api/chat",
        json={"message": "Who am I?", "conversationId": conversation_id},
        headers={"x-adcp-auth": DEMO_TOKEN},
    )
    assert r.status_code == 200 and r.json()["conversationId"] == conversation_id
    assert [(m.role, m.text) for m in model.requests[0].messages] == [
        ("user", "I am Ann."),
        ("assistant", "Hello Ann."),
        ("user", "Who am I?"),
    ]
    assert "Riverside Media" in model.requests[0].system


async def test_model_failure_ends_the_run_with_stop_reason_error(chat: ChatApp) -> None:
    async def rate_limited(request: ModelRequest, on_text: TextSink) -> ModelResponse:
        raise AdcpError("RATE_LIMITED", "The chat model is rate limited right now.")

    chat.use_model(
        ScriptedModel([Turn(tool_calls=[ToolCall("list_creative_formats")]), rate_limited])
    )
    r = await chat.client.post("/api/chat", json={"message": "formats"}, headers=bearer())
    body = r.json()
    assert r.status_code == 200
    assert body["stopReason"] == "error"
    assert body["error"]["code"] == "RATE_LIMITED"
    assert len(body["toolCalls"]) == 1  # the completed step is kept


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "message"),
        ({"message": 5}, "message"),
        ({"message": "   "}, "message"),
        ({"message": "hi", "model": "gpt-4o"}, "model"),
        ({"message": "hi", "max_iterations": 26}, "max_iterations"),
        ({"message": "hi", "max_iterations": "3"}, "max_iterations"),
        ({"message": "hi", "tool_subset": "get_products"}, "tool_subset"),
        ({"message": "hi", "conversationId": 7}, "conversationId"),
        ({"message": "hi", "temperature": 0.2}, "temperature"),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(
    chat: ChatApp, payload: dict[str, object], field: str
) -> None:
    chat.use_model(ScriptedModel([]))
    r = await chat.client.post("/api/chat", json=payload, headers=bearer())
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["field"] == field
    assert field in error["message"]


async def test_bad_json_auth_and_unknown_conversation(chat: ChatApp) -> None:
    chat.use_model(ScriptedModel([]))
    r = await chat.client.post(
        "/api/chat",
        content=b'{"message": ',
        headers={**bearer(), "content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"

    r = await chat.client.post("/api/chat", json={"message": "hi"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "AUTH_REQUIRED"
    assert r.headers["www-authenticate"] == "Bearer"

    r = await chat.client.post(
        "/api/chat", json={"message": "hi"}, headers=bearer("adcp_not_a_real_token_000000000000")
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "AUTH_INVALID"

    r = await chat.client.post(
        "/api/chat", json={"message": "hi", "conversationId": "conv_nope"}, headers=bearer()
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"


async def test_without_an_api_key_chat_answers_503(chat: ChatApp) -> None:
    r = await chat.client.post("/api/chat", json={"message": "hi"}, headers=bearer())
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert "ANTHROPIC_API_KEY" in error["details"]["suggestion"]
    r = await chat.client.post("/api/chat/stream", json={"message": "hi"}, headers=bearer())
    assert r.status_code == 503 and r.headers["content-type"] == "application/json"
    # Nothing was started: no conversation was created for the failed attempt.
    r = await chat.client.get("/api/chat/conversations", headers=bearer())
    assert r.json()["conversations"] == []


async def test_block_shapes_round_trip() -> None:
    # Storage relies on blocks surviving a JSON round trip unchanged.
    for block in (
        TextBlock(text="hi"),
        ToolUseBlock(id="t", name="get_products", input={"brief": "x"}),
        ToolResultBlock(tool_use_id="t", content={"status": "completed"}, is_error=False),
    ):
        assert type(block).model_validate(block.model_dump(mode="json")) == block
