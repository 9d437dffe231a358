"""``comply_test_controller`` (sandbox only) and the wire shapes of forced response arms.

The middleware lists and admits this tool for sandbox callers only; everyone else gets
the answer an unknown tool gets. The work is in ``services.test_controller``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from pydantic import Field

from adcp_agent.services import sandbox_arms
from adcp_agent.services import test_controller as controller
from adcp_agent.state import AppState
from adcp_agent_tools import media_wire
from adcp_agent_tools.caller import current_caller
from adcp_agent_tools.results import ok

TOOL_NAME = "comply_test_controller"


def forced_payload(forced: sandbox_arms.ForcedArm) -> dict[str, Any]:
    """The response a forced arm stands in for: a task envelope (submitted), or a
    request for the buyer's input (input-required)."""
    if forced.task is not None:
        return media_wire.submitted(forced.task)
    return {"status": "input-required", "reason": "APPROVAL_REQUIRED", "message": forced.message}


def forced_result(forced: sandbox_arms.ForcedArm) -> ToolResult:
    return media_wire.as_result(forced_payload(forced))


def register(mcp: FastMCP, state: AppState) -> None:
    @mcp.tool(
        name=TOOL_NAME,
        annotations={"readOnlyHint": False, "idempotentHint": True, "openWorldHint": False},
        output_schema=None,
    )
    async def comply_test_controller(
        scenario: Annotated[
            str,
            Field(
                description="'list_scenarios', a force_* / simulate_* / seed_* scenario, or "
                "a force_*_arm directive (see list_scenarios)."
            ),
        ],
        account: Annotated[
            dict[str, Any] | None,
            Field(
                description="Sandbox assertion: {sandbox: true}, optionally with account_id "
                "(or brand + operator) when you have several sandbox accounts."
            ),
        ] = None,
        params: Annotated[
            dict[str, Any] | None, Field(description="The scenario's parameters.")
        ] = None,
    ) -> ToolResult:
        """Drive this sandbox deterministically (AdCP compliance testing): force a media
        buy, creative, account or task into a state, simulate delivery or spend, seed
        fixtures, or make the next create_media_buy / get_products / get_signals answer
        with a given arm. Example: {scenario: 'force_media_buy_status', account:
        {sandbox: true}, params: {media_buy_id: 'mb_…', status: 'active'}}. Failures are
        answers: {success: false, error, error_detail, current_state}."""
        payload = await controller.run(state, current_caller(), scenario, account, params)
        return ok(payload)
