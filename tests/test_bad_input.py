"""A buyer's malformed input is answered with a typed error naming the field, and is
not logged as the server's problem."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from adcp_agent_tools.app import FASTMCP_SERVER_LOG

from adcp_agent.rest.http_io import parse_json
from tests.media_helpers import non_guaranteed
from tests.support import DEMO_TOKEN, LiveServer, call, mcp_client, raw_tool_call
from tests.support import RAW_HEADERS as HEADERS


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _fastmcp_log(level: int) -> Iterator[list[logging.LogRecord]]:
    logger = logging.getLogger(FASTMCP_SERVER_LOG)
    kept, before = _Kept(), logger.level
    logger.addHandler(kept)
    logger.setLevel(level)
    try:
        yield kept.records
    finally:
        logger.removeHandler(kept)
        logger.setLevel(before)


async def test_invalid_arguments_are_a_typed_error_and_no_server_warning(
    live: LiveServer,
) -> None:
    """FastMCP warned on every call its schema refused (a multi-line record each): an
    agent retrying bad arguments flooded the log, and a benchmark whose server log went
    to an unread pipe hung once it filled. The caller gets VALIDATION_ERROR naming the
    field; the server logs it at DEBUG, only when asked to."""
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        with _fastmcp_log(logging.INFO) as quiet:
            refused = await call(client, "get_products", {"brief": 42})
        with _fastmcp_log(logging.DEBUG) as verbose:
            await call(client, "get_products", {"brief": ["a list"]})
    [error] = refused.data["errors"]
    assert refused.is_error and error["code"] == "VALIDATION_ERROR"
    assert error["field"] == "brief"
    assert [r.getMessage() for r in quiet] == []
    [debug] = [r for r in verbose if "Invalid arguments" in r.getMessage()]
    assert debug.levelno == logging.DEBUG and "get_products" in debug.getMessage()


async def _raw_call(live: LiveServer, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(headers=HEADERS) as http:
        answer = await raw_tool_call(http, live.mcp_url, tool, arguments)
    result: dict[str, Any] = answer["result"]
    return result


async def test_a_lone_utf16_surrogate_is_a_validation_error_naming_its_field(
    live: LiveServer,
) -> None:
    """``"\\ud83d"`` alone is valid JSON but no valid text: it used to fail inside the
    tool (SQLite could not bind it) as a retryable SERVICE_UNAVAILABLE, with a
    traceback in the log. A pair (an emoji) is text like any other."""
    lone = "mb_\ud83d"
    with _fastmcp_log(logging.INFO) as logged:
        status = await _raw_call(live, "check_media_buy_status", {"media_buy_id": lone})
        buy = non_guaranteed(budget=1000)
        buy["packages"][0]["buyer_ref"] = "ref \udfff"
        buy["context"] = {"note": "\ud800"}
        create = await _raw_call(live, "create_media_buy", buy)
        key = await _raw_call(live, "get_products", {"filters": {"x\ud800": 1}})
        paired = await _raw_call(
            live, "create_media_buy", {**non_guaranteed(1000), "buyer_ref": "🎯 q4"}
        )
    for result, field in (
        (status, "media_buy_id"),
        (create, "packages[0].buyer_ref"),
        (key, "filters.x\\ud800"),
    ):
        [error] = result["structuredContent"]["errors"]
        assert result["isError"] and error["code"] == "VALIDATION_ERROR", result
        assert error["field"] == field and "not valid Unicode" in error["message"]
    assert "context" not in create["structuredContent"]  # (the surrogate is not echoed)
    assert not paired["isError"], paired
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        listed = await call(client, "get_media_buys", {})
    mine = [b for b in listed.data["media_buys"] if "🎯" in str(b.get("context"))]
    assert [b["context"] for b in mine] == [{"buyer_ref": "🎯 q4"}]
    assert [r.getMessage() for r in logged if r.levelno >= logging.WARNING] == []


async def test_nan_infinity_and_absurd_amounts_are_validation_errors(live: LiveServer) -> None:
    """NaN and Infinity are not JSON, but Python's parser takes them: a NaN budget or
    total slipped past every comparison (a buy was booked with total_budget NaN, one
    with an infinite bid), and a 1e300 budget overflowed the impression goal's
    integer column (an unexpected, retryable error). Each is now refused on its field;
    a budget, cap or bid past any real one, too."""

    def buy(**changes: Any) -> dict[str, Any]:
        args = non_guaranteed(budget=1000)
        package = {k: v for k, v in changes.items() if k in ("budget", "bid_price")}
        args["packages"][0].update(package)
        args.update({k: v for k, v in changes.items() if k not in package})
        return args

    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        listed = await call(client, "get_media_buys", {})
    before = {b["media_buy_id"] for b in listed.data["media_buys"]}
    refused = {
        "packages[0].budget": await _raw_call(live, "create_media_buy", buy(budget=math.nan)),
        "packages[0].bid_price": await _raw_call(live, "create_media_buy", buy(bid_price=math.inf)),
        "total_budget": await _raw_call(live, "create_media_buy", buy(total_budget=math.nan)),
    }
    too_much = {
        "packages[0].budget": await _raw_call(live, "create_media_buy", buy(budget=1e300)),
        "packages[0].bid_price": await _raw_call(live, "create_media_buy", buy(bid_price=2e6)),
    }
    booked = await _raw_call(live, "create_media_buy", buy())
    assert not booked["isError"], booked
    buy_id = booked["structuredContent"]["media_buy_id"]
    package_id = booked["structuredContent"]["packages"][0]["package_id"]
    update = {"media_buy_id": buy_id, "packages": [{"package_id": package_id, "budget": 1e300}]}
    too_much["packages[0].budget "] = await _raw_call(live, "update_media_buy", update)
    for field, result in refused.items():
        [error] = result["structuredContent"]["errors"]
        assert (error["code"], error["field"]) == ("VALIDATION_ERROR", field), result
        assert "not a finite number" in error["message"]
    for field, result in too_much.items():
        [error] = result["structuredContent"]["errors"]
        assert (error["code"], error["field"]) == ("VALIDATION_ERROR", field.strip()), result
        assert "more than" in error["message"] and error["details"]["maximum"] > 0
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        listed = await call(client, "get_media_buys", {})
    created = [b for b in listed.data["media_buys"] if b["media_buy_id"] not in before]
    assert [(b["media_buy_id"], b["total_budget"]) for b in created] == [(buy_id, 1000)]


async def test_dates_off_the_calendar_and_deep_nesting_are_refused_not_crashes(
    live: LiveServer,
) -> None:
    """9999-12-31 ends a flight or a report window where the day after it overflows,
    and 0001-01-01 with an offset underflows UTC: both failed as unexpected errors.
    Arguments nested hundreds deep failed inside the tool; a body nested thousands
    deep was an HTTP 500 from the JSON parser. Now: the field, or a JSON-RPC parse
    error."""
    avails = {
        "product_ids": ["display_run_of_site"],
        "flight_start_date": "2031-01-01",
        "flight_end_date": "9999-12-31",
    }
    refused = {
        "flight_end_date": await _raw_call(live, "get_avails", avails),
        "total_budget": await _raw_call(
            live, "get_avails", {**avails, "flight_end_date": "2031-01-09", "total_budget": 1e308}
        ),
        "end_date": await _raw_call(live, "get_media_buy_delivery", {"end_date": "9999-12-31"}),
        "end_time": await _raw_call(
            live, "create_media_buy", {**non_guaranteed(), "end_time": "9999-12-31T00:00:00Z"}
        ),
        "pagination" + "[0]" * 31: await _raw_call(
            live, "get_products", {"pagination": json.loads("[" * 40 + "]" * 40)}
        ),
    }
    for field, result in refused.items():
        [error] = result["structuredContent"]["errors"]
        assert (error["code"], error["field"]) == ("VALIDATION_ERROR", field), result
    nested = '{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": '
    nested += '"get_products", "arguments": {"pagination": ' + "[" * 5000 + "]" * 5000 + "}}}"
    async with httpx.AsyncClient(headers=HEADERS) as http:
        response = await http.post(live.mcp_url, content=nested)
    assert response.status_code == 400 and response.json()["error"]["code"] == -32700


def test_rest_bodies_are_parsed_as_json_not_as_python_reads_json() -> None:
    """Every REST body goes through ``parse_json`` (the tools and chat API, tenant
    management): NaN, Infinity and a body nested past the parser's depth are invalid
    JSON like any other, where they were a value or an HTTP 500."""
    for text in ('{"x": NaN}', '{"x": -Infinity}', "[" * 5000 + "]" * 5000, "{"):
        with pytest.raises(ValueError):
            parse_json(text.encode())
    assert parse_json(b'{"x": 1.5e300, "y": "\\ud83d\\ude00"}') == {"x": 1.5e300, "y": "😀"}


async def test_the_rest_tools_api_answers_a_malformed_body_with_400(live: LiveServer) -> None:
    bodies = ('{"brief": NaN}', '{"brief": ' + "[" * 5000 + "]" * 5000 + "}")
    async with httpx.AsyncClient(base_url=live.base_url, headers=HEADERS) as http:
        answers = [await http.post("/api/tools/get_products", content=b) for b in bodies]
    for response in answers:
        assert response.status_code == 400, response.text
        assert "not valid JSON" in response.text


async def test_a_nul_character_is_refused_wherever_it_comes_from(live: LiveServer) -> None:
    """PostgreSQL text cannot hold U+0000: an id holding one failed in the database's
    hands (an unexpected error over MCP, an HTTP 500 from the chat routes). It is
    refused on its field, on SQLite as on PostgreSQL."""
    status = await _raw_call(live, "check_media_buy_status", {"media_buy_id": "mb_\x00"})
    [error] = status["structuredContent"]["errors"]
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "media_buy_id")
    assert "NUL" in error["message"]
    async with httpx.AsyncClient(base_url=live.base_url, headers=HEADERS) as http:
        by_path = await http.get("/api/chat/conversations/c%00")
        by_query = await http.get("/api/chat/conversations", params={"cursor": "a\x00"})
        in_body = await http.post(
            "/api/tools/check_media_buy_status", json={"media_buy_id": "\x00"}
        )
    for response, field in ((by_path, "id"), (by_query, "cursor"), (in_body, "media_buy_id")):
        assert response.status_code == 422, response.text  # REST's VALIDATION_ERROR
        assert response.json()["error"]["details"]["field"] == field


async def test_references_longer_than_their_columns_are_refused(live: LiveServer) -> None:
    """po_number (100) and buyer_ref (200, the buy's and a package's) are stored in
    bounded columns: PostgreSQL refused longer ones, as an unexpected error."""
    too_long = {
        "po_number": {**non_guaranteed(), "po_number": "p" * 101},
        "buyer_ref": {**non_guaranteed(), "buyer_ref": "b" * 201},
        "packages[0].buyer_ref": non_guaranteed(buyer_ref="b" * 201),
    }
    not_text = non_guaranteed(context={"buyer_ref": {"not": "text"}})  # a package's context
    answers = {f: await _raw_call(live, "create_media_buy", a) for f, a in too_long.items()}
    answers["packages[0].buyer_ref "] = await _raw_call(live, "create_media_buy", not_text)
    for field, result in answers.items():
        [error] = result["structuredContent"]["errors"]
        assert (error["code"], error["field"]) == ("VALIDATION_ERROR", field.strip()), result


async def test_a_body_over_the_size_limit_is_refused_before_it_is_held(
    live: LiveServer,
) -> None:
    """A 100 MB tools/call was read, parsed and held whole (RSS 130 → 450 MiB). Past
    ``max_request_bytes`` (4 MiB) a body is refused with 413 in the route's language —
    declared (Content-Length) or sent in chunks — and one under it, chunked, works."""
    limit = live.settings.max_request_bytes
    brief = {"brief": "x" * (limit + 1)}
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call"}
    call["params"] = {"name": "get_products", "arguments": brief}

    async def chunks(data: bytes) -> Any:
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    small = {**call, "params": {"name": "get_products", "arguments": {"brief": "sports"}}}
    async with httpx.AsyncClient(base_url=live.base_url, headers=HEADERS, timeout=30) as http:
        declared = await http.post("/mcp/", content=json.dumps(call))
        chunked = await http.post("/mcp/", content=chunks(json.dumps(call).encode()))
        rest = await http.post("/api/tools/get_products", content=json.dumps(brief))
        fine = await http.post("/mcp/", content=chunks(json.dumps(small).encode()))
    for response in (declared, chunked):
        assert response.status_code == 413, response.text[:200]
        error = response.json()["error"]
        assert error["code"] == -32600 and error["data"]["details"]["max_bytes"] == limit
    assert rest.status_code == 413 and rest.json()["error"]["code"] == "INVALID_REQUEST"
    assert fine.status_code == 200 and fine.json()["result"]["structuredContent"]["products"]
