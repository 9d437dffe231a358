"""Every REST route, every body field, query parameter and path parameter, the malformed
values of test_malformed_arguments: the answer is a typed error envelope or a success —
never a 500, never a body that is not JSON. On SQLite and PostgreSQL.

The fields come from the request models themselves: a first pass calls every route and
method once and records which model each reads its body or query with
(``read_body``/``read_model``/``read_query``), so a new route or field joins the sweep
without being listed here. Each malformed value is sent next to a valid body (built
from the model's JSON schema, with ``VALID`` for fields a generic value cannot satisfy)
and next to ids of things that exist (a buy, its approval task, an account, a webhook,
an event, a conversation, a creative awaiting review), so it reaches past validation.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pydantic import BaseModel
from starlette.routing import Mount, Route

from adcp_agent.chat.scripted import ScriptedModel, Turn
from adcp_agent.config import Settings
from adcp_agent.rest import admin_http, http_io
from adcp_agent.services.admin_keys import HEADER as KEY_HEADER
from tests.creative_helpers import display
from tests.databases import database_settings
from tests.media_helpers import guaranteed, non_guaranteed
from tests.support import DEMO_TOKEN
from tests.tenant_admin_support import served_app
from tests.test_malformed_arguments import MALFORMED

PREFIX = "/api/v1/tenant-management"
# Query and path parameters are text: the malformed values as a client would send them.
MALFORMED_TEXT = [
    "nan",
    "-inf",
    "1e308",
    str(2**63),
    "-1",
    "\x00",
    "9999-12-31",
    "x" * 5000,
    "",
    "../..",
    "%ff",
    "[]",
]
# Fields whose valid value no generic one satisfies (URLs, e-mail addresses, patterns).
VALID: dict[str, Any] = {
    "url": "https://hooks.example.com/sweep",
    "to": ["ops@example.com"],
    "subdomain": "sweep",
    "message": "What do you sell?",
    "kind": "impression",
    "ad_server": "mock",
    "seconds": 60,
    "principal_ids": ["demo_buyer"],
}


def _sample(schema: dict[str, Any], defs: dict[str, Any], name: str = "") -> Any:
    """A value ``schema`` accepts: the known one for ``name``, else its default,
    example, first enum member or the simplest value of its type."""
    if name in VALID:
        return copy.deepcopy(VALID[name])
    if "$ref" in schema:
        return _sample(defs[schema["$ref"].rsplit("/", 1)[1]], defs, name)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return _sample(options[0], defs, name)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    if schema.get("examples"):
        return schema["examples"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            key: _sample(properties[key], defs, key)
            for key in schema.get("required", [])
            if key in properties
        }
    if kind == "array":
        count = schema.get("minItems", 0)
        return [_sample(schema.get("items", {}), defs) for _ in range(count)]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return max(1.0, schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    formats = {
        "date-time": "2026-12-01T00:00:00Z",
        "date": "2026-12-01",
        "email": "ops@example.com",
        "uri": VALID["url"],
    }
    if schema.get("format") in formats:
        return formats[schema["format"]]
    return "sweep-" + "x" * max(0, schema.get("minLength", 0) - 6)


def valid_body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    body = _sample(schema, schema.get("$defs", {}))
    assert isinstance(body, dict)
    return body


@dataclass
class Seen:
    """The models the route just called read its body or query with."""

    bodies: list[type[BaseModel]] = field(default_factory=list)
    queries: list[type[BaseModel]] = field(default_factory=list)


def _recording(seen: Seen, original: Callable[..., Any], into: str) -> Callable[..., Any]:
    if into == "queries":

        def read_query(request: Any, model: type[BaseModel]) -> Any:
            seen.queries.append(model)
            return original(request, model)

        return read_query

    async def read(request: Any, model: type[BaseModel]) -> Any:
        seen.bodies.append(model)
        return await original(request, model)

    return read


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Seen:
    """Record every model read, in each REST module that imported a reader."""
    record = Seen()
    readers = {
        admin_http.read_body: "bodies",
        http_io.read_model: "bodies",
        admin_http.read_query: "queries",
    }
    for name, module in list(sys.modules.items()):
        if not name.startswith("adcp_agent.rest") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if callable(value) and value in readers:
                monkeypatch.setattr(module, attr, _recording(record, value, readers[value]))
    return record


@dataclass
class Sweep:
    client: httpx.AsyncClient
    headers: dict[str, str]
    ids: dict[str, str]


@pytest.fixture
async def rest(tmp_path: Path, seen: Seen) -> AsyncIterator[Sweep]:
    settings = Settings(
        data_dir=tmp_path,
        demo_token=DEMO_TOKEN,
        admin_rate_limit_per_minute=10**9,
        mcp_rate_limit_per_minute=10**9,
        # No deliveries: the sweep's webhook names a public host, and tests never reach
        # the network beyond 127.0.0.1 (a delivery would resolve it).
        outbox_worker=False,
        **database_settings(tmp_path),
    )
    async with served_app(settings, base_url="http://testserver") as served:
        served.app.state.chat_model = ScriptedModel(
            [Turn(text="We sell video and display.")] * 10_000
        )
        c = served.http
        key = (await c.post(f"{PREFIX}/init-api-key")).json()["api_key"]
        headers = {KEY_HEADER: key, "authorization": f"Bearer {DEMO_TOKEN}"}
        sweep = Sweep(c, headers, {})
        sweep.ids = await _real_ids(sweep)
        yield sweep


async def _ok(sweep: Sweep, method: str, path: str, body: Any = None) -> Any:
    response = await sweep.client.request(method, path, json=body, headers=sweep.headers)
    assert response.status_code < 300, (path, response.text[:300])
    return response.json()


async def _real_ids(sweep: Sweep) -> dict[str, str]:
    """Path ids naming things that exist, so a malformed body reaches the handler's
    work rather than its 404."""
    buy = await _ok(sweep, "POST", "/api/tools/create_media_buy", non_guaranteed())
    held = await _ok(sweep, "POST", "/api/tools/create_media_buy", guaranteed())
    accounts = await _ok(sweep, "POST", "/api/tools/list_accounts", {})
    hook = {"url": VALID["url"], "events": ["media_buy.created"]}
    webhook = await _ok(sweep, "POST", f"{PREFIX}/tenants/demo/webhooks", hook)
    events = await _ok(sweep, "GET", f"{PREFIX}/events")
    conversation = await _ok(sweep, "POST", "/api/chat/conversations", {})
    await _ok(sweep, "POST", "/api/tools/sync_creatives", {"creatives": [display("cr_sweep")]})
    buy_data, task_data = _payload(buy), _payload(held)
    draft = await _ok(
        sweep, "GET", f"/api/notifications/draft/by-media-buy/{buy_data['media_buy_id']}"
    )
    return {
        "draftId": draft["id"],
        "tenant_id": "demo",
        "pid": "demo_buyer",
        "wid": webhook["webhook_id"],
        "eid": events["events"][0]["event_id"],
        "task_id": task_data["task_id"],
        "aid": _payload(accounts)["accounts"][0]["account_id"],
        "creative": "cr_sweep",
        "id": conversation["id"],
        "media_buy_id": buy_data["media_buy_id"],
        "toolName": "get_products",
        "kind": "impression",
    }


def _payload(answer: dict[str, Any]) -> dict[str, Any]:
    """The AdCP payload of an /api/tools answer (whatever envelope it comes in)."""
    return answer.get("result", answer.get("data", answer))


def _routes(app_routes: list[Any], prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for route in app_routes:
        if isinstance(route, Mount):
            out += _routes(route.routes or [], prefix + route.path)
        elif isinstance(route, Route) and "{rest:path}" not in route.path:
            out += [(m, prefix + route.path) for m in sorted(route.methods or []) if m != "HEAD"]
    return [(m, p) for m, p in out if not p.startswith("/mcp")]


def _fill(path: str, ids: dict[str, str], **override: str) -> str:
    for name, value in {**ids, **override}.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    assert "{" not in path, f"no id for {path}: add one to _real_ids"
    return path


def _broken(response: httpx.Response) -> str | None:
    """What is wrong with an answer to a malformed request, or None."""
    if response.status_code >= 500:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if "text/event-stream" in response.headers.get("content-type", ""):
        return None if "INTERNAL_ERROR" not in response.text else response.text[:200]
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}, not JSON: {response.text[:100]!r}"
    if response.status_code >= 400 and "error" not in json.dumps(body):
        return f"HTTP {response.status_code} without an error: {response.text[:200]}"
    return None


async def test_no_malformed_value_makes_a_rest_route_fail(rest: Sweep, seen: Seen) -> None:
    app_routes = rest.client._transport.app.routes  # type: ignore[attr-defined]
    routes = _routes(app_routes)
    assert len(routes) > 40
    failures: list[tuple[str, ...]] = []
    models: set[str] = set()
    calls = 0

    async def send(method: str, path: str, body: Any = None, **kwargs: Any) -> None:
        """``body`` as JSON text (``json.dumps``: NaN as NaN, a lone surrogate escaped)."""
        nonlocal calls
        if body is not None:
            kwargs["content"] = json.dumps(body)
        headers = {**rest.headers, "content-type": "application/json"}
        response = await rest.client.request(method, path, headers=headers, **kwargs)
        calls += 1
        if (problem := _broken(response)) is not None:
            what = kwargs.get("params", kwargs.get("content", ""))
            failures.append((method, path[:120], repr(what)[:80], problem))

    # Destructive calls last, so the ids they would delete stay valid for the rest.
    routes.sort(key=lambda mp: (mp[0] == "DELETE", "rotate" in mp[1] or "api-key" in mp[1]))
    for method, template in routes:
        path = _fill(template, rest.ids)
        seen.bodies.clear()
        seen.queries.clear()
        await send(method, path, {})  # the first pass: which models does it read?
        for model in dict.fromkeys(seen.bodies):
            # Required fields naming things get things that exist (the draft to send).
            base = {k: rest.ids.get(k, v) for k, v in valid_body(model).items()}
            models.add(model.__name__)
            # The base must pass, or the sweep never gets past validation: give the
            # field that refuses it a value in VALID.
            model.model_validate(base)
            for name in model.model_json_schema().get("properties", {}):
                for value in MALFORMED:
                    await send(method, path, {**copy.deepcopy(base), name: value})
            for raw in (b"[]", b"null", b'"x"', b"1e999", b"{", b"\xff\xfe"):
                await send(method, path, content=raw)
        for model in dict.fromkeys(seen.queries):
            for name in model.model_json_schema().get("properties", {}):
                for text in MALFORMED_TEXT:
                    await send(method, path, params={name: text})
        for name in rest.ids:
            if "{" + name + "}" in template:
                for text in MALFORMED_TEXT:
                    if text:  # an empty segment is another route
                        await send(method, _fill(template, rest.ids, **{name: text}), {})
    assert calls > 1500, calls
    assert {"TenantCreate", "ChatBody", "TrackingEventBody", "SendEmailBody"} <= models
    assert failures == [], "\n".join(map(str, failures[:40]))


async def test_unknown_paths_and_methods_answer_in_the_error_envelope(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, outbox_worker=False, **database_settings(tmp_path))
    async with served_app(settings) as served:
        missing = await served.http.get("/api/nothing-here")
        wrong = await served.http.put("/api/tools")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    assert "/api/nothing-here" in missing.json()["error"]["message"]
    assert wrong.status_code == 405 and "GET" in wrong.headers["allow"]
    assert wrong.json()["error"]["code"] == "INVALID_REQUEST"
    allowed = wrong.json()["error"]["message"].rsplit("; use ", 1)[1].rstrip(".")
    assert set(allowed.split(", ")) == {"GET", "HEAD"}  # (a set's order: either)
