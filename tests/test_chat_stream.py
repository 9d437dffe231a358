"""POST /api/chat/stream: the seed's SSE flow, and what a disconnect leaves behind."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from adcp_agent.chat import conversations
from adcp_agent.chat.messages import ToolResultBlock
from adcp_agent.chat.model import ModelRequest, ModelResponse, TextSink
from adcp_agent.chat.scripted import ScriptedModel, ToolCall, Turn
from adcp_agent.chat.service import ChatInput, ChatService
from adcp_agent.db.models import SignalActivation
from adcp_agent.errors import AdcpError
from adcp_agent.services.identity import Caller, authenticate
from adcp_agent.tool_executor import ToolExecutor, ToolOutcome, ToolSpec
from tests.chat_support import ChatApp, bearer, chat_app, parse_sse
from tests.support import DEMO_TOKEN

DEADLINE_S = 10  # an upper bound for a hang, never a wait for work


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[ChatApp]:
    async with chat_app(tmp_path) as app:
        yield app


async def test_events_follow_the_seed_flow(chat: ChatApp) -> None:
    chat.use_model(
        ScriptedModel(
            [
                Turn(
                    text=["Checking", " the catalog."],
                    tool_calls=[ToolCall("get_products", {"brief": "radio spots for commuters"})],
                ),
                Turn(text=["Try ", "audio_streaming_radio", "."]),
            ]
        )
    )
    r = await chat.client.post(
        "/api/chat/stream", json={"message": "Radio for commuters?"}, headers=bearer()
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    events = parse_sse(r.text)
    assert [e.event for e in events] == [
        "start",
        "text",
        "text",
        "tool_call",
        "tool_result",
        "text",
        "text",
        "text",
        "done",
    ]
    start, done = events[0].data, events[-1].data
    assert start == {
        "conversationId": done["conversationId"],
        "model": "claude-sonnet-5-5",
    }
    call, result = events[3].data, events[4].data
    assert call == {
        "id": "toolu_01_01",
        "name": "get_products",
        "input": {"brief": "radio spots for commuters"},
    }
    assert result["id"] == call["id"] and result["isError"] is False
    assert result["result"]["products"][0]["product_id"] == "audio_streaming_radio"
    streamed = "".join(e.data["text"] for e in events if e.event == "text")
    assert streamed == "Checking the catalog.Try audio_streaming_radio."
    assert done["message"] == "Try audio_streaming_radio."
    assert done["stopReason"] == "end_turn"
    assert [c["name"] for c in done["toolCalls"]] == ["get_products"]


async def test_a_model_failure_ends_the_stream_with_an_error_event(chat: ChatApp) -> None:
    async def down(request: ModelRequest, on_text: TextSink) -> ModelResponse:
        raise AdcpError("SERVICE_UNAVAILABLE", "The chat model could not be reached (HTTP 529).")

    chat.use_model(ScriptedModel([down]))
    r = await chat.client.post("/api/chat/stream", json={"message": "hi"}, headers=bearer())
    events = parse_sse(r.text)
    assert [e.event for e in events] == ["start", "error"]
    assert events[1].data["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert events[1].data["stopReason"] == "error"
    assert events[1].data["conversationId"] == events[0].data["conversationId"]


async def test_request_errors_are_json_not_a_stream(chat: ChatApp) -> None:
    chat.use_model(ScriptedModel([]))
    r = await chat.client.post("/api/chat/stream", json={"message": "hi"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "AUTH_REQUIRED"
    r = await chat.client.post(
        "/api/chat/stream", json={"message": "hi", "model": "claude-2"}, headers=bearer()
    )
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "model"


def _scope(path: str, token: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def test_client_disconnect_cancels_the_run_and_keeps_completed_steps(
    chat: ChatApp,
) -> None:
    """ASGITransport cannot disconnect mid-response, so this drives the ASGI app the way
    a server does: the client goes away once the second turn has started streaming."""
    streaming = asyncio.Event()
    model_cancelled = asyncio.Event()

    async def still_generating(request: ModelRequest, on_text: TextSink) -> ModelResponse:
        await on_text("The formats are")
        try:
            await asyncio.Event().wait()  # a turn that would go on for a long time
        except asyncio.CancelledError:
            model_cancelled.set()
            raise
        raise AssertionError("the turn was never cancelled")

    chat.use_model(
        ScriptedModel([Turn(tool_calls=[ToolCall("list_creative_formats")]), still_generating])
    )
    request_sent = False
    frames: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            body = json.dumps({"message": "Which formats?"}).encode()
            return {"type": "http.request", "body": body, "more_body": False}
        await streaming.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        frames.append(message.get("body", b""))
        if b"event: text" in message.get("body", b""):
            streaming.set()

    before = asyncio.all_tasks()
    await asyncio.wait_for(
        chat.app(_scope("/api/chat/stream", DEMO_TOKEN), receive, send), DEADLINE_S
    )
    assert model_cancelled.is_set()
    assert asyncio.all_tasks() - before == set(), "the run left tasks behind"

    events = parse_sse(b"".join(frames).decode())
    assert [e.event for e in events] == ["start", "tool_call", "tool_result", "text"]
    conversation_id = events[0].data["conversationId"]
    # The completed step is kept; the turn that was still streaming is not.
    caller = await authenticate(chat.state.db, DEMO_TOKEN)
    _, stored = await conversations.all_messages(chat.state.db, caller, conversation_id)
    assert [[b.type for b in s.message.content] for s in stored] == [
        ["text"],
        ["tool_use"],
        ["tool_result"],
    ]
    # The conversation is free again and continues from the kept history.
    model = ScriptedModel([Turn(text="Display and video.")])
    chat.use_model(model)
    r = await chat.client.post(
        "/api/chat",
        json={"message": "Still there?", "conversationId": conversation_id},
        headers=bearer(),
    )
    assert r.status_code == 200
    assert [m.role for m in model.requests[0].messages] == ["user", "assistant", "user", "user"]


class GatedTools:
    """The real executor, except that one tool waits until the test opens the gate."""

    def __init__(self, inner: ToolExecutor, gated: str) -> None:
        self.inner = inner
        self.gated = gated
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.finished: list[str] = []

    async def list_tools(self) -> list[ToolSpec]:
        return await self.inner.list_tools()

    async def call(self, caller: Caller, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        if name == self.gated:
            self.entered.set()
            await self.gate.wait()
        outcome = await self.inner.call(caller, name, arguments)
        self.finished.append(name)
        return outcome


async def test_cancel_during_a_tool_call_finishes_that_tool_and_saves_the_step(
    chat: ChatApp,
) -> None:
    tools = GatedTools(chat.app.state.tools, gated="activate_signal")
    service = ChatService(chat.state.db, tools, chat.state.settings)
    caller = await authenticate(chat.state.db, DEMO_TOKEN)
    model = ScriptedModel(
        [
            Turn(
                tool_calls=[
                    ToolCall("activate_signal", {"signal_agent_segment_id": "food_lovers"}),
                    ToolCall("get_signals", {"signal_spec": "food"}),
                ]
            ),
            Turn(text="never reached"),
        ]
    )
    run = await service.start(caller, ChatInput(message="Activate food lovers"))
    task = asyncio.create_task(run.execute(model))
    await asyncio.wait_for(tools.entered.wait(), DEADLINE_S)
    task.cancel()
    tools.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, DEADLINE_S)

    # The started tool ran to completion, the next one never started, no turn followed.
    assert tools.finished == ["activate_signal"]
    assert model.remaining == 1
    async with chat.state.db.session() as session:
        rows = (
            await session.exec(
                select(SignalActivation).where(SignalActivation.signal_id == "food_lovers")
            )
        ).all()
    assert len(rows) == 1
    _, stored = await conversations.all_messages(chat.state.db, caller, run.conversation_id)
    results = stored[-1].message.content
    assert [b.type for b in results] == ["tool_result", "tool_result"]
    done, skipped = results
    assert isinstance(done, ToolResultBlock) and isinstance(skipped, ToolResultBlock)
    assert not done.is_error and done.content["status"] == "completed"
    assert skipped.is_error and "Not run" in skipped.content["adcp_error"]["message"]
    # The run slot was released: the conversation accepts the next message.
    again = await service.start(
        caller, ChatInput(message="ok?", conversation_id=run.conversation_id)
    )
    again.release()


async def test_one_run_at_a_time_per_conversation(chat: ChatApp) -> None:
    service = ChatService(chat.state.db, chat.app.state.tools, chat.state.settings)
    caller = await authenticate(chat.state.db, DEMO_TOKEN)
    run = await service.start(caller, ChatInput(message="first"))
    with pytest.raises(AdcpError) as busy:
        await service.start(
            caller, ChatInput(message="second", conversation_id=run.conversation_id)
        )
    assert busy.value.code == "CONFLICT" and busy.value.http_status == 409
    run.release()
    (await service.start(caller, ChatInput("second", run.conversation_id))).release()


async def test_a_retired_model_name_is_answered_by_its_successor_and_says_so(
    chat: ChatApp,
) -> None:
    """Seed 002 lists claude-sonnet-4-5-20250929, which reached end-of-life on
    2026-11-30: the name is still accepted, the successor answers, and the stream names
    the model that actually answered."""
    model = ScriptedModel([Turn(text="Hello."), Turn(text="Hi again.")])
    chat.use_model(model)
    r = await chat.client.post(
        "/api/chat/stream",
        json={"message": "hi", "model": "claude-sonnet-4-5-20250929"},
        headers=bearer(),
    )
    events = parse_sse(r.text)
    assert events[0].data["model"] == "claude-sonnet-5-5"
    assert [req.model for req in model.requests] == ["claude-sonnet-5-5"]
    # A current name is served as asked.
    r = await chat.client.post(
        "/api/chat",
        json={"message": "hi", "model": "claude-haiku-4-5-20251001"},
        headers=bearer(),
    )
    assert r.json()["model"] == "claude-haiku-4-5-20251001"
    assert model.requests[-1].model == "claude-haiku-4-5-20251001"
