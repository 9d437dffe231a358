"""``GET /api/tools`` and ``POST /api/tools/{toolName}``: the MCP tools over plain REST,
run through the same executor, so validation, errors, tenant scoping and the anonymous
public view are exactly those of MCP.

A successful call answers 200 with the AdCP payload. A failed one answers the HTTP
status of its AdCP code with the AdCP payload (``errors``, ``adcp_error``) plus the
REST ``error`` envelope, so both AdCP-aware and generic clients find what they read."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adcp_agent.errors import AdcpError, http_status_for
from adcp_agent.rest.http_io import endpoint, optional_caller, read_json_object
from adcp_agent.tool_executor import ToolExecutor


def tools_routes(tools: ToolExecutor) -> list[BaseRoute]:
    async def list_tools(request: Request) -> Response:
        specs = await tools.list_tools()
        return JSONResponse(
            {
                "tools": [
                    {
                        "name": t.name,
                        "description": t.description,
                        "inputSchema": t.input_schema,
                        "readOnly": t.read_only,
                    }
                    for t in specs
                ]
            }
        )

    async def call_tool(request: Request) -> Response:
        name = request.path_params["toolName"]
        available = [t.name for t in await tools.list_tools()]
        if name not in available:
            raise AdcpError(
                "NOT_FOUND",
                f"Unknown tool '{name}'.",
                field="toolName",
                details={"available": available},
            )
        caller = await optional_caller(request)
        arguments = await read_json_object(request)
        outcome = await tools.call(caller, name, arguments)
        if not outcome.is_error:
            return JSONResponse(outcome.data)
        return JSONResponse(
            {**outcome.data, "error": _envelope(outcome.data)},
            status_code=http_status_for(_first_error(outcome.data).get("code", "")),
        )

    return [
        Route("/api/tools", endpoint(list_tools), methods=["GET"]),
        Route("/api/tools/{toolName}", endpoint(call_tool), methods=["POST"]),
    ]


def _first_error(payload: dict[str, Any]) -> dict[str, Any]:
    first = payload.get("adcp_error") or (payload.get("errors") or [{}])[0]
    return first if isinstance(first, dict) else {}


def _envelope(payload: dict[str, Any]) -> dict[str, Any]:
    first = _first_error(payload)
    details = dict(first.get("details") or {})
    details.update({k: first[k] for k in ("field", "suggestion", "recovery") if k in first})
    return {
        "code": first.get("code", "SERVICE_UNAVAILABLE"),
        "message": first.get("message", "The tool failed."),
        "details": details,
    }
