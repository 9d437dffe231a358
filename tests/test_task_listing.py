"""list_tasks filters, sorts and pages in the database with every AdCP 3.1 filter and
sort field (none silently ignored), breakdowns over the whole match rather than the
page, and typed errors for values outside the protocol's enums — on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.models_media import Task
from adcp_agent.services import tenants
from adcp_agent.services.approvals import TASK_DOMAIN
from adcp_agent.state import AppState
from tests.databases import live_servers
from tests.support import LiveServer, assert_valid, call, mcp_client

TASKER = "adcp_test_task_lister_token_0123456789ab"
OTHER = "adcp_test_task_other_token_0123456789abc"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# (task_id, type, status, media_buy_id, created hours after T0, updated hours after T0)
ROWS = [
    ("task_01", "create_media_buy", "completed", "mb_Alpha_1", 0, 1),
    ("task_02", "create_media_buy", "submitted", "mb_alpha_2", 1, 1),
    ("task_03", "update_media_buy", "completed", "mb_alpha_1", 2, 9),
    ("task_04", "create_media_buy", "rejected", "mb_beta_1", 3, 4),
    ("task_05", "sync_creatives", "failed", None, 4, 4),
    ("task_06", "activate_signal", "working", None, 5, 8),
    ("task_07", "get_signals", "completed", None, 6, 6),
    ("task_08", "create_media_buy", "canceled", "mb_50%_off", 7, 7),
    ("task_09", "update_media_buy", "input-required", "mb_beta_1", 8, 10),
    ("task_10", "create_media_buy", "completed", "mb_gamma_x", 8, 8),  # same created_at
    ("task_11", "create_media_buy", "submitted", "mb_gamma_y", 9, 12),
    ("task_12", "create_media_buy", "completed", "mb_deltaZ1", 10, 10),  # "a_1" as a pattern
]


async def _setup(state: AppState) -> None:
    await tenants.create_principal(
        state.db, tenant_id="demo", name="Tasker", token=TASKER, principal_id="tasker"
    )
    await tenants.create_principal(
        state.db, tenant_id="demo", name="Other", token=OTHER, principal_id="tasker_other"
    )
    async with AsyncSession(state.db.engine, expire_on_commit=False) as session:
        for principal in ("tasker", "tasker_other"):
            for task_id, kind, status, buy, created, updated in ROWS:
                session.add(
                    Task(
                        task_id=task_id if principal == "tasker" else f"{task_id}_other",
                        tenant_id="demo",
                        principal_id=principal,
                        task_type=kind,
                        status=status,
                        media_buy_id=buy,
                        created_at=T0 + timedelta(hours=created),
                        updated_at=T0 + timedelta(hours=updated),
                    )
                )
        await session.commit()


tasking, tasking_sqlite, tasking_postgres = live_servers("tasking", _setup)


def _at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


async def _list(server: LiveServer, **args: Any) -> Any:
    args.setdefault("pagination", {"max_results": 100})
    async with mcp_client(server.mcp_url, TASKER) as c:
        return await call(c, "list_tasks", args)


def _ids(result: Any) -> list[str]:
    return [t["task_id"] for t in result.data["tasks"]]


# filters → the tasks (of ROWS) they must return
CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("status", {"status": "submitted"}, {"task_02", "task_11"}),
    ("statuses", {"statuses": ["failed", "canceled"]}, {"task_05", "task_08"}),
    ("status and statuses", {"status": "working", "statuses": ["failed"]}, {"task_05", "task_06"}),
    ("task type", {"task_type": "update_media_buy"}, {"task_03", "task_09"}),
    ("task types", {"task_types": ["sync_creatives", "get_signals"]}, {"task_05", "task_07"}),
    ("a type never made", {"task_types": ["build_creative"]}, set()),
    ("protocol", {"protocol": "signals"}, {"task_06", "task_07"}),
    ("protocols", {"protocols": ["creative", "signals"]}, {"task_05", "task_06", "task_07"}),
    ("ids", {"task_ids": ["task_03", "task_07", "task_03_other", "nope"]}, {"task_03", "task_07"}),
    ("created after", {"created_after": _at(8)}, {"task_09", "task_10", "task_11", "task_12"}),
    ("created before", {"created_before": _at(2)}, {"task_01", "task_02"}),
    (
        "updated window",
        {"updated_after": _at(8), "updated_before": _at(10)},
        {"task_03", "task_06", "task_10"},
    ),
    ("context, any case", {"context_contains": "ALPHA"}, {"task_01", "task_02", "task_03"}),
    ("context, % is literal", {"context_contains": "50%"}, {"task_08"}),
    (
        "context, _ is literal",
        {"context_contains": "a_1"},
        {"task_01", "task_03", "task_04", "task_09"},
    ),
    ("has a webhook", {"has_webhook": True}, set()),
    ("has no webhook", {"has_webhook": False}, {r[0] for r in ROWS}),
    (
        "combined",
        {"protocol": "media-buy", "statuses": ["completed"], "created_after": _at(1)},
        {"task_03", "task_10", "task_12"},
    ),
]


@pytest.mark.parametrize(("label", "filters", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_each_filter_returns_exactly_its_tasks_with_breakdowns_of_the_match(
    tasking: LiveServer, label: str, filters: dict[str, Any], expected: set[str]
) -> None:
    result = await _list(tasking, filters=filters)
    assert not result.is_error, result.data
    assert_valid("list_tasks", result.data)
    assert set(_ids(result)) == expected, label
    rows = [r for r in ROWS if r[0] in expected]
    summary = result.data["query_summary"]
    assert summary["total_matching"] == len(expected)
    assert summary["status_breakdown"] == dict(Counter(r[2] for r in rows))
    assert summary["domain_breakdown"] == dict(
        Counter(TASK_DOMAIN.get(r[1], "media-buy") for r in rows)
    )
    assert set(summary["filters_applied"]) == set(filters)


SORTS = {
    "created_at": lambda r: r[4],
    "updated_at": lambda r: r[5],
    "status": lambda r: r[2],
    "task_type": lambda r: r[1],
    "protocol": lambda r: TASK_DOMAIN.get(r[1], "media-buy"),
}


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("field", list(SORTS))
async def test_every_sort_field_orders_the_tasks(
    tasking: LiveServer, field: str, direction: str
) -> None:
    result = await _list(tasking, sort={"field": field, "direction": direction})
    assert not result.is_error, result.data
    key = SORTS[field]
    # By the field in the direction asked, then by task_id.
    expected = sorted(ROWS, key=lambda r: r[0])
    expected.sort(key=key, reverse=direction == "desc")
    assert _ids(result) == [r[0] for r in expected]
    assert result.data["query_summary"]["sort_applied"] == {"field": field, "direction": direction}


async def test_the_default_order_is_newest_first(tasking: LiveServer) -> None:
    result = await _list(tasking)
    newest = sorted(sorted(ROWS, key=lambda r: r[0]), key=lambda r: -r[4])
    assert _ids(result) == [r[0] for r in newest]


async def test_pages_walk_the_match_once_and_count_all_of_it(tasking: LiveServer) -> None:
    filters = {"protocol": "media-buy"}
    whole = _ids(await _list(tasking, filters=filters))
    seen: list[str] = []
    pagination: dict[str, Any] = {"max_results": 3}
    while True:
        page = await _list(tasking, filters=filters, pagination=pagination)
        assert page.data["query_summary"]["total_matching"] == len(whole) == 9
        assert page.data["query_summary"]["status_breakdown"]["completed"] == 4
        assert page.data["pagination"]["total_count"] == len(whole)
        seen += _ids(page)
        if not page.data["pagination"]["has_more"]:
            break
        pagination = {"max_results": 3, "cursor": page.data["pagination"]["cursor"]}
    assert seen == whole
    resorted = await _list(
        tasking, filters=filters, sort={"direction": "asc"}, pagination=pagination
    )
    assert resorted.is_error and resorted.error["field"] == "pagination.cursor"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"filters": {"statuses": ["done"]}}, "filters.statuses"),
        ({"filters": {"status": "pending"}}, "filters.status"),
        ({"filters": {"task_type": "buy_everything"}}, "filters.task_type"),
        ({"filters": {"protocol": "television"}}, "filters.protocol"),
        ({"filters": {"statuses": []}}, "filters.statuses"),
        ({"filters": {"updated_after": "yesterday"}}, "filters.updated_after"),
        ({"sort": {"field": "priority"}}, "sort.field"),
        ({"sort": {"direction": "sideways"}}, "sort.direction"),
    ],
)
async def test_values_outside_the_protocol_are_refused_naming_the_field(
    tasking: LiveServer, args: dict[str, Any], field: str
) -> None:
    result = await _list(tasking, **args)
    assert result.is_error
    assert result.error["code"] in ("VALIDATION_ERROR", "INVALID_REQUEST")
    assert result.error.get("field", "").startswith(field), result.error


async def test_history_tells_the_answers_each_task_gave(tasking: LiveServer) -> None:
    listed = await _list(
        tasking, filters={"task_ids": ["task_01", "task_02"]}, include_history=True
    )
    plain = await _list(tasking, filters={"task_ids": ["task_01"]})
    async with mcp_client(tasking.mcp_url, TASKER) as c:
        polled = await call(c, "get_task_status", {"task_id": "task_01", "include_history": True})
    assert not listed.is_error and not polled.is_error, (listed.data, polled.data)
    assert_valid("list_tasks", listed.data)
    assert_valid("get_task_status", polled.data)
    history = {t["task_id"]: t["history"] for t in listed.data["tasks"]}
    assert [(h["timestamp"], h["data"]["status"]) for h in history["task_01"]] == [
        (_at(0), "submitted"),
        (_at(1), "completed"),
    ]
    assert [h["data"]["status"] for h in history["task_02"]] == ["submitted"]
    assert polled.data["history"] == history["task_01"]
    assert "history" not in plain.data["tasks"][0]
