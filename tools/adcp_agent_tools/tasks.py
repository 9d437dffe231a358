"""Task tools: poll asynchronous work such as a guaranteed buy awaiting approval."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from pydantic import Field

from adcp_agent.services import approvals, media_reads
from adcp_agent.state import AppState
from adcp_agent_tools import media_wire
from adcp_agent_tools.caller import current_caller
from adcp_agent_tools.discovery import READ_ONLY
from adcp_agent_tools.params import AccountRef, Pagination, _Open, dump
from adcp_agent_tools.results import (
    adcp_errors_as_results,
    fingerprint,
    ok,
    page_info,
    page_window,
)
from adcp_agent_tools.times import filter_time

TaskStatus = Literal[
    "submitted",
    "working",
    "input-required",
    "completed",
    "canceled",
    "failed",
    "rejected",
    "auth-required",
    "unknown",
]
Protocol = Literal[
    "media-buy",
    "signals",
    "governance",
    "creative",
    "brand",
    "sponsored-intelligence",
    "measurement",
]
# AdCP 3.1's TaskType enum (tasks of types this agent never creates simply match none).
TaskType = Literal[
    "create_media_buy", "update_media_buy", "media_buy_delivery", "sync_creatives",
    "build_creative", "activate_signal", "get_products", "get_signals",
    "create_property_list", "update_property_list", "get_property_list",
    "list_property_lists", "delete_property_list", "sync_accounts",
    "get_account_financials", "get_creative_delivery", "sync_event_sources",
    "sync_audiences", "sync_catalogs", "log_event", "get_brand_identity", "search_brands",
    "get_rights", "acquire_rights",
]  # fmt: skip


class TaskFilters(_Open):
    status: TaskStatus | None = None
    statuses: list[TaskStatus] | None = Field(default=None, min_length=1, max_length=20)
    task_type: TaskType | None = None
    task_types: list[TaskType] | None = Field(default=None, min_length=1, max_length=30)
    protocol: Protocol | None = None
    protocols: list[Protocol] | None = Field(default=None, min_length=1, max_length=10)
    task_ids: list[str] | None = Field(default=None, min_length=1, max_length=100)
    created_after: str | None = None
    created_before: str | None = None
    updated_after: str | None = None
    updated_before: str | None = None
    context_contains: str | None = Field(default=None, max_length=200)
    has_webhook: bool | None = None


class TaskSort(_Open):
    field: Literal["created_at", "updated_at", "status", "task_type", "protocol"] = "created_at"
    direction: Literal["asc", "desc"] = "desc"


def _query(f: TaskFilters, sort: TaskSort) -> approvals.TaskQuery:
    def both(one: str | None, many: list[str] | None) -> list[str]:
        return [*(many or []), *([one] if one else [])]

    return approvals.TaskQuery(
        statuses=both(f.status, f.statuses),  # type: ignore[arg-type]
        task_types=both(f.task_type, f.task_types),  # type: ignore[arg-type]
        protocols=both(f.protocol, f.protocols),  # type: ignore[arg-type]
        task_ids=f.task_ids or [],
        created_after=filter_time(f, "created_after"),
        created_before=filter_time(f, "created_before"),
        updated_after=filter_time(f, "updated_after"),
        updated_before=filter_time(f, "updated_before"),
        context_contains=f.context_contains,
        has_webhook=f.has_webhook,
        sort=sort.field,
        descending=sort.direction == "desc",
    )


_HISTORY = (
    "Each answer the task gave: submitted, then its outcome (status, message, result or error)."
)


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
        include_history: Annotated[bool, Field(description=_HISTORY)] = False,
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
        out = media_wire.task(task, result=result)
        if include_history:
            out["history"] = media_wire.task_history(task)
        return media_wire.as_result(out)

    @mcp.tool(name="list_tasks", annotations=READ_ONLY, output_schema=None)
    @adcp_errors_as_results
    async def list_tasks(
        filters: TaskFilters | None = None,
        sort: TaskSort | None = None,
        pagination: Pagination | None = None,
        account: AccountRef | None = None,
        include_history: Annotated[bool, Field(description=_HISTORY)] = False,
    ) -> ToolResult:
        """Your tasks, newest first unless sorted otherwise (created_at, updated_at,
        status, task_type, protocol); filter by status(es), task type(s), protocol(s),
        task ids, created/updated time ranges, or a media buy id (context_contains)."""
        caller = current_caller()
        f = filters or TaskFilters()
        order = sort or TaskSort()
        query = fingerprint("tasks", caller.tenant_id, caller.principal_id, dump(f), dump(order))
        offset, limit = page_window(dump(pagination), query)
        listing = await approvals.list_tasks(
            state, caller, _query(f, order), offset=offset, limit=limit
        )
        by_domain: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        for (status, kind), n in listing.counts.items():
            by_domain[approvals.task_domain(kind)] += n
            by_status[status] += n
        page = listing.tasks
        applied = [k for k, v in (dump(f) or {}).items() if v is not None]
        return ok(
            {
                "query_summary": {
                    "total_matching": listing.total,
                    "returned": len(page),
                    "domain_breakdown": dict(by_domain),
                    "status_breakdown": dict(by_status),
                    "filters_applied": applied,
                    "sort_applied": {"field": order.field, "direction": order.direction},
                },
                "tasks": [
                    {
                        "task_id": t.task_id,
                        "task_type": t.task_type,
                        "domain": approvals.task_domain(t.task_type),
                        "status": t.status,
                        "created_at": media_wire.iso(t.created_at),
                        "updated_at": media_wire.iso(t.updated_at),
                        "has_webhook": False,
                        **({"message": t.message} if t.message else {}),
                        **({"history": media_wire.task_history(t)} if include_history else {}),
                    }
                    for t in page
                ],
                "pagination": page_info(offset, limit, listing.total, query),
                "as_of": media_wire.iso(state.clock.now()),
            }
        )
