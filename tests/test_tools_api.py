"""GET /api/tools and POST /api/tools/{toolName}: the MCP tools over REST, with MCP's
validation, errors, scoping and anonymous public view."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adcp_agent.errors import http_status_for
from tests.chat_support import HARBOR_TOKEN, ChatApp, bearer, chat_app
from tests.support import assert_valid


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ChatApp]:
    async with chat_app(tmp_path) as app:
        yield app


def _ids(payload: dict[str, object]) -> set[str]:
    return {p["product_id"] for p in payload["products"]}  # type: ignore[index,union-attr]


async def test_list_names_descriptions_and_schemas(api: ChatApp) -> None:
    r = await api.client.get("/api/tools")
    assert r.status_code == 200
    tools = {t["name"]: t for t in r.json()["tools"]}
    assert {"get_products", "get_signals", "activate_signal"} <= set(tools)
    products = tools["get_products"]
    assert "brief" in products["description"].lower()
    assert products["inputSchema"]["type"] == "object"
    assert "brief" in products["inputSchema"]["properties"]
    assert products["readOnly"] is True and tools["activate_signal"]["readOnly"] is False


async def test_direct_call_returns_the_adcp_payload(api: ChatApp) -> None:
    r = await api.client.post(
        "/api/tools/get_products",
        json={"brief": "video ads on TV for sports fans"},
        headers=bearer(),
    )
    assert r.status_code == 200
    assert_valid("get_products", r.json())
    assert {"ctv_sports_premium", "ctv_private_upfront"} <= _ids(r.json())

    anonymous = await api.client.post("/api/tools/get_products", json={"buying_mode": "wholesale"})
    assert anonymous.status_code == 200
    assert "ctv_sports_premium" in _ids(anonymous.json())
    assert "ctv_private_upfront" not in _ids(anonymous.json())  # the public view, like MCP

    other = await api.client.post("/api/tools/get_products", json={}, headers=bearer(HARBOR_TOKEN))
    assert _ids(other.json()) == {"harbor_drive_time"}


async def test_a_mutation_runs_as_the_caller(api: ChatApp) -> None:
    r = await api.client.post(
        "/api/tools/activate_signal",
        json={"signal_agent_segment_id": "new_parents", "context": {"ref": "r-1"}},
        headers=bearer(),
    )
    assert r.status_code == 200
    body = r.json()
    assert_valid("activate_signal", body)
    assert body["deployments"][0]["activation_key"]["value"] == "new_parents"
    assert body["context"] == {"ref": "r-1"}  # echoed like MCP


@pytest.mark.parametrize(
    ("tool", "args", "headers", "status", "code", "field"),
    [
        (
            "activate_signal",
            {"signal_agent_segment_id": "new_parents"},
            {},
            401,
            "AUTH_REQUIRED",
            None,
        ),
        (
            "get_products",
            {},
            bearer("adcp_not_a_real_token_000000000000"),
            401,
            "AUTH_INVALID",
            None,
        ),
        (
            "activate_signal",
            {"signal_agent_segment_id": "nope"},
            bearer(),
            404,
            "SIGNAL_NOT_FOUND",
            "signal_agent_segment_id",
        ),
        (
            "get_products",
            {"filters": {"delivery_type": "sometimes"}},
            bearer(),
            422,
            "VALIDATION_ERROR",
            "filters.delivery_type",
        ),
        (
            "get_products",
            {"pagination": {"cursor": "garbage"}},
            bearer(),
            400,
            "INVALID_REQUEST",
            "pagination.cursor",
        ),
        ("get_products", {}, {"x-adcp-tenant": "nowhere"}, 401, "AUTH_REQUIRED", None),
    ],
)
async def test_failures_map_adcp_codes_to_http_statuses(
    api: ChatApp,
    tool: str,
    args: dict[str, object],
    headers: dict[str, str],
    status: int,
    code: str,
    field: str | None,
) -> None:
    r = await api.client.post(f"/api/tools/{tool}", json=args, headers=headers)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code
    assert body["error"]["details"].get("field") == field
    if "adcp_error" in body:  # failures inside the tool keep the AdCP payload too
        assert body["status"] == "failed" and body["errors"][0]["code"] == code
        assert_valid(tool, {k: v for k, v in body.items() if k != "error"})


async def test_unknown_tool_and_bad_bodies(api: ChatApp) -> None:
    r = await api.client.post("/api/tools/drop_tables", json={}, headers=bearer())
    assert r.status_code == 404
    assert "get_products" in r.json()["error"]["details"]["available"]

    r = await api.client.post(
        "/api/tools/get_products",
        content=b"{nope",
        headers={**bearer(), "content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"

    r = await api.client.post("/api/tools/get_products", json=["brief"], headers=bearer())
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "body"

    r = await api.client.post("/api/tools/list_authorized_properties", headers=bearer())
    assert r.status_code == 200  # no body means no arguments


def test_http_status_for_follows_the_code_table() -> None:
    assert http_status_for("SIGNAL_NOT_FOUND") == 404
    assert http_status_for("RATE_LIMITED") == 429
    assert http_status_for("SERVICE_UNAVAILABLE") == 503
    assert http_status_for("SOMETHING_NEW") == 400
