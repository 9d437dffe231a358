"""One middleware around every tool call:

1. resolves the caller from ``Authorization: Bearer`` or ``x-adcp-auth`` (tenant-scoped);
2. refuses the AdCP fields a tool does not act on where acting without them would do
   something else than asked (``unsupported.REFUSED``), and drops the other arguments
   a tool does not declare (newer AdCP clients send ``context``, ``ext``,
   ``adcp_version``... which must be tolerated, not rejected) — reporting on a read's
   answer those that could have shaped it (``unsupported.unapplied``);
3. renders failures once, as AdCP errors: ``isError`` with structured content
   ``{"errors": [...], "adcp_error": {...}}`` — never a bare exception text;
4. echoes the request's ``context`` object back on every response;
5. lists and admits sandbox-only tools (``comply_test_controller``) for sandbox callers
   only: to anyone else they are exactly as absent as a tool that does not exist.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import mcp.types as mt
from fastmcp.exceptions import NotFoundError, ToolError
from fastmcp.exceptions import ValidationError as FastMCPValidationError
from fastmcp.server.dependencies import get_http_request
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import Tool, ToolResult
from pydantic import ValidationError

from adcp_agent.errors import AdcpError
from adcp_agent.json_values import malformed
from adcp_agent.services import identity, sandbox
from adcp_agent.state import AppState
from adcp_agent_tools import unsupported
from adcp_agent_tools.caller import get_preset_caller, reset_caller, set_caller
from adcp_agent_tools.results import error_result, success

if TYPE_CHECKING:
    from fastmcp import FastMCP

log = logging.getLogger("adcp_agent.tools")

# Tools an anonymous caller may use when the tenant allows public discovery.
PUBLIC_TOOLS = frozenset(
    {
        "get_adcp_capabilities",
        "get_products",
        "list_creative_formats",
        "list_authorized_properties",
        "get_signals",
    }
)
# Tools only sandbox callers (a test tenant, or a principal with a sandbox account) see.
SANDBOX_ONLY_TOOLS = frozenset({"comply_test_controller"})


def _headers() -> dict[str, str]:
    try:
        request = get_http_request()
    except RuntimeError:
        return {}
    return {k.lower(): v for k, v in request.headers.items()}


def validation_errors(exc: ValidationError) -> list[AdcpError]:
    out: list[AdcpError] = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err["loc"])
        missing = err["type"] == "missing"
        out.append(
            AdcpError(
                "INVALID_REQUEST" if missing else "VALIDATION_ERROR",
                f"'{loc}' is required." if missing else f"'{loc}': {err['msg']}.",
                field=loc or None,
            )
        )
    return out or [AdcpError("INVALID_REQUEST", "The arguments are not valid.")]


class AdcpMiddleware(Middleware):
    def __init__(self, state: AppState) -> None:
        self.state = state
        # Each registered tool's declared argument names (tools are registered once, at
        # start-up).
        self._declared: dict[str, frozenset[str]] = {}

    async def _declared_arguments(self, server: FastMCP | None, name: str) -> frozenset[str] | None:
        declared = self._declared.get(name)
        if declared is None and server is not None:
            tool = await server.get_tool(name)
            if tool is None:
                return None
            declared = self._declared[name] = frozenset(tool.parameters.get("properties", {}))
        return declared

    async def _resolve(self, tool_name: str) -> identity.Caller:
        preset = get_preset_caller()
        if preset is not None:
            if not preset.authenticated and tool_name not in PUBLIC_TOOLS:
                raise _auth_required(tool_name)
            return await identity.refreshed(self.state.db, preset)
        headers = _headers()
        token = identity.token_from_headers(headers)
        if token is not None:
            return await identity.authenticate(self.state.db, token)
        if tool_name not in PUBLIC_TOOLS:
            raise _auth_required(tool_name)
        return await identity.anonymous(
            self.state.db, identity.tenant_hint(headers, self.state.default_tenant)
        )

    async def sees_sandbox_tools(self) -> bool:
        """Whether this request's caller is listed (and admitted to) the sandbox-only
        tools; an unknown or missing token is not."""
        try:
            caller = await self._resolve(next(iter(SANDBOX_ONLY_TOOLS)))
        except AdcpError:
            return False
        return sandbox.is_sandbox_caller(caller)

    async def on_list_tools(
        self,
        context: MiddlewareContext[mt.ListToolsRequest],
        call_next: CallNext[mt.ListToolsRequest, Sequence[Tool]],
    ) -> Sequence[Tool]:
        tools = await call_next(context)
        hidden = {t.name for t in tools} & SANDBOX_ONLY_TOOLS
        if hidden and not await self.sees_sandbox_tools():
            return [t for t in tools if t.name not in hidden]
        return tools

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        params = context.message
        arguments = dict(params.arguments or {})
        echo = arguments.get("context")
        server = context.fastmcp_context.fastmcp if context.fastmcp_context else None
        declared = await self._declared_arguments(server, params.name)
        if declared is None or (
            params.name in SANDBOX_ONLY_TOOLS and not await self.sees_sandbox_tools()
        ):
            return _with_context(error_result([_unknown_tool(params.name)]), echo)
        if (bad := malformed(arguments)) is not None:
            field, problem = bad
            error = AdcpError("VALIDATION_ERROR", f"'{field}' {problem}.", field=field)
            return error_result([error])  # (its context is not echoed: it may be the one)
        try:
            caller = await self._resolve(params.name)
        except AdcpError as exc:
            return _with_context(error_result([exc]), echo)
        if (refused := unsupported.refusal(params.name, arguments)) is not None:
            return _with_context(error_result([refused]), echo)
        warnings: list[dict[str, Any]] = []
        dropped = sorted(set(arguments) - declared)
        if dropped:
            arguments = {k: v for k, v in arguments.items() if k in declared}
            warnings = unsupported.unapplied(params.name, dropped)
            log.debug("tool %s: ignoring undeclared arguments %s", params.name, dropped)
        token = set_caller(caller)
        try:
            result = await call_next(
                context.copy(message=params.model_copy(update={"arguments": arguments}))
            )
        except FastMCPValidationError as exc:
            cause = exc.__cause__
            errors = (
                validation_errors(cause)
                if isinstance(cause, ValidationError)
                else [AdcpError("INVALID_REQUEST", "The arguments are not valid.")]
            )
            result = error_result(errors)
        except ValidationError as exc:
            result = error_result(validation_errors(exc))
        except NotFoundError:
            result = error_result([_unknown_tool(params.name)])
        except ToolError:
            # An unexpected failure inside a tool: fastmcp has logged it with its
            # traceback; the buyer gets a typed, retryable error and no internals.
            result = error_result(
                [
                    AdcpError(
                        "SERVICE_UNAVAILABLE",
                        f"'{params.name}' failed unexpectedly; the publisher has been notified.",
                        recovery="transient",
                    )
                ]
            )
        finally:
            reset_caller(token)
        if warnings and not result.is_error:
            result = _with_warnings(result, warnings)
        return _with_context(result, echo)


def _auth_required(tool_name: str) -> AdcpError:
    return AdcpError(
        "AUTH_REQUIRED",
        f"'{tool_name}' needs an authenticated buyer.",
        suggestion="Send 'Authorization: Bearer <token>' or 'x-adcp-auth: <token>'.",
    )


def _unknown_tool(name: str) -> AdcpError:
    return AdcpError("INVALID_REQUEST", f"Unknown tool '{name}'.", field="name")


def _with_context(result: ToolResult, echo: Any) -> ToolResult:
    """AdCP context passthrough: the buyer's ``context`` comes back unchanged (in the
    JSON text too, for clients that read only that)."""
    payload = result.structured_content
    if echo is not None and isinstance(payload, dict) and "context" not in payload:
        payload["context"] = echo
        if not result.is_error:
            result = success(payload, result.meta)
    return result


def _with_warnings(result: ToolResult, warnings: list[dict[str, Any]]) -> ToolResult:
    """A successful read's answer with ``warnings`` added to its ``errors``."""
    payload = result.structured_content
    if not isinstance(payload, dict):
        return result
    payload["errors"] = [*payload.get("errors", []), *warnings]
    return success(payload, result.meta)
