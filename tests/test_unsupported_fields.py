"""AdCP 3.1 fields this agent does not act on are refused by name, never dropped: a buy
negotiated on measurement terms is not booked without them. And the 3.1 forms it does
take are taken (total_budget as {amount, currency}; package flights equal to the
buy's; a buy created paused)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from adcp_agent_adapters.mock import load_state
from adcp_agent_tools.unsupported import REFUSED

from tests.creative_helpers import display, sync_args
from tests.media_helpers import guaranteed, key, non_guaranteed
from tests.support import DEMO_TOKEN, LiveServer, assert_valid, call, mcp_client

# A value that asks for each refused field (the table's paths, "[]" = the first item).
ASKING: dict[str, Any] = {
    "proposal_id": "prop_1",
    "packages[].measurement_terms": {"billing_measurement": {"vendor": "x"}},
    "packages[].performance_standards": [{"metric": "viewability", "threshold": 0.7}],
    "packages[].committed_metrics": ["viewability"],
    "packages[].catalogs": [{"catalog_id": "c1"}],
    "reporting_webhook": {"url": "https://buyer.example/hook"},
    "artifact_webhook": {"url": "https://buyer.example/art"},
    "io_acceptance": {"accepted": True},
    "invoice_recipient": {"name": "Finance"},
    "creatives[].status": "approved",
    "filters.has_served": True,
    "filters.concept_ids": ["concept_1"],
    "filters.has_variables": True,
    "packages[].creative_assignments[].placement_ids": ["pl_1"],
    "packages[].creative_assignments[].placement_refs": [{"placement_id": "pl_1"}],
    "assignments[].placement_ids": ["pl_1"],
    "creatives[].placement_ids": ["pl_1"],
    "creatives[].placement_refs": [{"placement_id": "pl_1"}],
    "packages[].agency_estimate_number": "EST-PKG-1",
    "packages[].format_kind": "video_hosted",
    "packages[].format_option_refs": [{"scope": "product", "format_option_id": "fo_1"}],
    "packages[].params": {"width": 300, "height": 250},
}


def _with(args: dict[str, Any], path: str, value: Any) -> tuple[dict[str, Any], str]:
    """``args`` with ``value`` at ``path`` (the first item of each list, made if
    missing), and the path as the error names it."""
    out = copy.deepcopy(args)
    node, where = out, []
    *steps, last = path.split(".")
    for step in steps:
        if step.endswith("[]"):
            items = node.setdefault(step[:-2], [])
            if not items:
                items.append({})
            node = items[0]
            where.append(f"{step[:-2]}[0]")
        else:
            node = node.setdefault(step, {})
            where.append(step)
    node[last] = value
    return out, ".".join([*where, last])


CASES = [(tool, path) for tool, checks in REFUSED.items() for path, _asks, _why in checks]


@pytest.mark.parametrize(("tool", "path"), CASES, ids=[f"{t}:{p}" for t, p in CASES])
async def test_each_field_not_acted_on_is_refused_by_name(
    live: LiveServer, tool: str, path: str
) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        base: dict[str, Any]
        if tool == "create_media_buy":
            base = non_guaranteed()
        elif tool == "update_media_buy":
            booked = await call(c, "create_media_buy", non_guaranteed())
            base = {
                "media_buy_id": booked.data["media_buy_id"],
                "paused": True,
                "idempotency_key": key("u"),
            }
        elif tool == "sync_creatives":
            base = sync_args([display("cr_refused")])
        else:
            base = {"filters": {}}
        # update_media_buy's new_packages refuse what create_media_buy's packages do
        args, field = _with(base, path, ASKING.get(path, ASKING.get(path.removeprefix("new_"))))
        refused = await call(c, tool, args)
        retried = await call(c, tool, base)  # the same key: nothing was claimed
    assert refused.is_error, refused.data
    assert refused.error_codes == ["UNSUPPORTED_FEATURE"]
    assert refused.error["field"] == field
    assert not retried.is_error, retried.data


async def test_package_flights_equal_to_the_buy_are_accepted(live: LiveServer) -> None:
    args = non_guaranteed()
    args["packages"][0].update(start_time=args["start_time"], end_time=args["end_time"])
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        booked = await call(c, "create_media_buy", args)
    assert not booked.is_error, booked.data


@pytest.mark.parametrize(
    ("total", "outcome"),
    [
        ({"amount": 5000, "currency": "USD"}, None),
        (5000, None),
        ({"amount": 4000, "currency": "USD"}, ("VALIDATION_ERROR", "total_budget")),
        ({"amount": 5000, "currency": "EUR"}, ("VALIDATION_ERROR", "total_budget.currency")),
        ({"amount": 5000, "currency": "usd"}, ("VALIDATION_ERROR", "total_budget")),
        ({"amount": 5000}, ("VALIDATION_ERROR", "total_budget")),
    ],
)
async def test_total_budget_takes_the_3_1_amount_and_currency(
    live: LiveServer, total: Any, outcome: tuple[str, str] | None
) -> None:
    args = {**non_guaranteed(budget=5000), "total_budget": total}
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        booked = await call(c, "create_media_buy", args)
    if outcome is None:
        assert not booked.is_error, booked.data
        assert_valid("create_media_buy", booked.data)
        return
    assert booked.is_error
    code, field = outcome
    assert booked.error["code"] == code
    assert booked.error["field"].startswith(field), booked.error


async def test_a_buy_created_paused_is_paused_on_the_ad_server_until_resumed(
    live: LiveServer,
) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        booked = await call(c, "create_media_buy", {**non_guaranteed(), "paused": True})
        assert not booked.is_error, booked.data
        assert_valid("create_media_buy", booked.data)
        buy_id = booked.data["media_buy_id"]
        listed = await call(c, "get_media_buys", {"media_buy_ids": [buy_id]})
        order_paused = _order_status(live, buy_id)
        resumed = await call(
            c,
            "update_media_buy",
            {"media_buy_id": buy_id, "paused": False, "idempotency_key": key("r")},
        )
        after = await call(c, "get_media_buys", {"media_buy_ids": [buy_id]})
        held = await call(c, "create_media_buy", {**guaranteed(), "paused": True})
    assert listed.data["media_buys"][0]["status"] == "paused"
    assert order_paused == "paused"
    assert not resumed.is_error, resumed.data
    assert after.data["media_buys"][0]["status"] == "pending_start"  # its flight is ahead
    assert _order_status(live, buy_id) == "delivering"
    assert held.is_error and (held.error["code"], held.error["field"]) == (
        "UNSUPPORTED_FEATURE",
        "paused",
    )


def _order(live: LiveServer, buy_id: str) -> Any:
    orders, _creatives = load_state(live.data_dir / "adapters" / "demo-mock.state")
    [order] = [o for o in orders.values() if o.spec.media_buy_id == buy_id]
    return order


def _order_status(live: LiveServer, buy_id: str) -> str:
    return str(_order(live, buy_id).status)


async def test_the_agency_estimate_number_travels_with_the_order(live: LiveServer) -> None:
    estimate = {**non_guaranteed(), "agency_estimate_number": "EST-2031-0042"}
    estimate["packages"][0]["agency_estimate_number"] = "EST-2031-0042"  # the buy's: fine
    both = {**non_guaranteed(), "agency_estimate_number": "EST-1", "po_number": "PO-9"}
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        booked = await call(c, "create_media_buy", estimate)
        clash = await call(c, "create_media_buy", both)
    assert not booked.is_error, booked.data
    assert _order(live, booked.data["media_buy_id"]).spec.po_number == "EST-2031-0042"
    assert clash.error_codes == ["VALIDATION_ERROR"]
    assert clash.error["field"] == "agency_estimate_number"


async def test_a_caller_without_a_token_is_told_to_authenticate_first(live: LiveServer) -> None:
    """Authentication comes before any judgement of the request: an anonymous caller
    learns nothing about what this agent would refuse."""
    args = {**non_guaranteed(), "proposal_id": "p1"}
    async with mcp_client(live.mcp_url, None) as anonymous:
        refused = await call(anonymous, "create_media_buy", args)
    assert refused.error_codes == ["AUTH_REQUIRED"]
