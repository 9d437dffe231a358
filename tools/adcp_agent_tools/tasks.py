"""Task tools: poll asynchronous work such as a guaranteed buy awaiting approval."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from pydantic import Field

from adcp_agent.services import approvals, media_reads
from adcp_agent.state import AppState
from adcp_agent_tools import media_wire
from adcp_agent_tools.caller import current_caller
from adcp_agent_tools.discovery import READ_ONLY
from adcp_agent_tools.media import parse_time
from adcp_agent_tools.params import AccountRef, Pagination, _Open, dump
from adcp_agent_tools.results import adcp_errors_as_results, fingerprint, ok, paginate

TASK_STATUSES = (
    "submitted",
    "working",
    "input-required",
    "completed",
    "canceled",
    "failed",
    "rejected",
)


class TaskFilters(_Open):
    status: str | None = None
    statuses: list[str] | None = None
    task_type: str | None = None
    task_types: list[str] | None = None
    task_ids: list[str] | None = Field(default=None, max_length=100)
    created_after: str | None = None
    created_before: str | None = None


class TaskSort(_Open):
    field: str = "created_at"
    direction: str = "desc"


def register(mcp: FastMCP, state: AppState) -> None:
    async def completed_result(task_media_buy_id: str | None) -> dict[str, Any] | None:
        caller = current_caller()
        if not task_media_buy_id:
            return None
        views, _ = await media_reads.list_buys(state, caller, media_buy_ids=[task_media_buy_id])
        if not views:
            return None
        return media_wire.create_completed(
            views[0].buy, views[0].packages, state.agent_url, now=state.clock.now()
        )

    @mcp.tool(name="get_task_status", annotations=READ_ONLY, output_schema=None)
    @adcp_errors_as_results
    async def get_task_status(
        task_id: Annotated[str, Field(min_length=1)],
        include_result: Annotated[
            bool, Field(description="Include the finished operation's response.")
        ] = True,
        account: AccountRef | None = None,
    ) -> ToolResult:
        """Poll a task (e.g. the task_id create_media_buy returned for a guaranteed buy).
        status: submitted (awaiting the publisher), completed (result holds the
        create_media_buy response with media_buy_id), rejected (error says why)."""
        caller = current_caller()
        task = await approvals.get_task(state, caller, task_id)
        result = None
        if include_result and task.status == "completed" and task.task_type == "create_media_buy":
            result = await completed_result(task.media_buy_id)
        if include_result and task.status == "completed" and result is None:
            result = task.result  # e.g. a sandbox task completed by force_task_completion
        return media_wire.as_result(media_wire.task(task, result=result))

    @mcp.tool(name="list_tasks", annotations=READ_ONLY, output_schema=None)
    @adcp_errors_as_results
    async def list_tasks(
        filters: TaskFilters | None = None,
        sort: TaskSort | None = None,
        pagination: Pagination | None = None,
        account: AccountRef | None = None,
    ) -> ToolResult:
        """Your tasks, newest first; filter by status(es), task type(s), ids, dates."""
        caller = current_caller()
        f = filters or TaskFilters()
        statuses = list(f.statuses or []) + ([f.status] if f.status else [])
        types = list(f.task_types or []) + ([f.task_type] if f.task_type else [])
        after = parse_time(f.created_after, "filters.created_after") if f.created_after else None
        before = (
            parse_time(f.created_before, "filters.created_before") if f.created_before else None
        )
        newest_first = (sort or TaskSort()).direction != "asc"
        tasks = await approvals.list_tasks(
            state,
            caller,
            statuses=statuses,
            task_types=types,
            task_ids=f.task_ids or [],
            created_after=after,
            created_before=before,
            newest_first=newest_first,
        )
        page, page_info = paginate(
            tasks,
            dump(pagination),
            fingerprint("tasks", caller.tenant_id, caller.principal_id, dump(f), newest_first),
        )
        applied = [k for k, v in (dump(f) or {}).items() if v]
        return ok(
            {
                "query_summary": {
                    "total_matching": len(tasks),
                    "returned": len(page),
                    "domain_breakdown": dict(
                        Counter(media_wire.TASK_DOMAIN.get(t.task_type, "media-buy") for t in tasks)
                    ),
                    "status_breakdown": dict(Counter(t.status for t in tasks)),
                    "filters_applied": applied,
                    "sort_applied": {
                        "field": "created_at",
                        "direction": "desc" if newest_first else "asc",
                    },
                },
                "tasks": [
                    {
                        "task_id": t.task_id,
                        "task_type": t.task_type,
                        "domain": media_wire.TASK_DOMAIN.get(t.task_type, "media-buy"),
                        "status": t.status,
                        "created_at": media_wire.iso(t.created_at),
                        "updated_at": media_wire.iso(t.updated_at),
                        "has_webhook": False,
                        **({"message": t.message} if t.message else {}),
                    }
                    for t in page
                ],
                "pagination": page_info,
                "as_of": media_wire.iso(state.clock.now()),
            }
        )
