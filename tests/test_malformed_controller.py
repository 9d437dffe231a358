"""The sandbox test controller's every scenario, every param, the malformed values of
test_malformed_arguments: the answer is always the controller's own (a result, or
``success: false`` with its error code) — never an unexpected failure, never an
internal error, never an HTTP error. On SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx

from adcp_agent.services.test_controller import SCENARIOS
from tests.media_helpers import guaranteed
from tests.sandbox_support import (
    CONTROLLER,
    SANDBOX,
    SBX_TOKEN,
    SandboxServer,
    flight,
    ng_buy,
    sbx,
    sbx_postgres,
    sbx_sqlite,
)
from tests.support import RAW_HEADERS, raw_tool_call
from tests.test_malformed_arguments import CRASHED, MALFORMED

__all__ = ["sbx", "sbx_postgres", "sbx_sqlite"]  # the module-scoped sandbox server fixture

# Valid-looking params for each scenario (the ids need not exist: a malformed value in
# one param must be answered whatever the others name).
BASE: dict[str, dict[str, Any]] = {
    "force_media_buy_status": {"media_buy_id": "mb_sweep", "status": "active"},
    "force_creative_status": {"creative_id": "cr_sweep", "status": "approved"},
    "force_account_status": {"account_id": "acc_sweep", "status": "active"},
    "force_task_completion": {"task_id": "task_sweep", "result": {}},
    "force_create_media_buy_arm": {"arm": "submitted"},
    "force_get_products_arm": {"arm": "submitted"},
    "force_get_signals_arm": {"arm": "submitted"},
    "simulate_delivery": {"media_buy_id": "mb_sweep", "impressions": 10},
    "simulate_budget_spend": {"spend_percentage": 50, "media_buy_id": "mb_sweep"},
    "seed_account": {"account_id": "acc_seed_sweep", "fixture": {}},
    "seed_product": {"product_id": "prod_sweep", "fixture": {}},
    "seed_pricing_option": {"product_id": "prod_sweep", "pricing_option_id": "po_sweep"},
    "seed_creative": {"creative_id": "cr_seed_sweep", "fixture": {}},
    "seed_creative_format": {"format_id": "fmt_sweep", "fixture": {}},
    "seed_media_buy": {"media_buy_id": "mb_seed_sweep", "fixture": {}},
    # Last: it leaves the ad server "down" for this account until reset.
    "force_upstream_unavailable": {"tool": "create_media_buy", "reset": True},
}


async def _real_ids(http: httpx.AsyncClient, url: str) -> dict[str, str]:
    """Sweep ids standing for things that exist (a malformed value next to a real buy
    reaches further than one next to an unknown id): a live buy, its account, a
    guaranteed buy's approval task, a seeded creative."""
    start, end = flight()
    booked = await raw_tool_call(http, url, "create_media_buy", ng_buy())
    buy = booked["result"]["structuredContent"]
    held = {**guaranteed(), "start_time": start, "end_time": end}
    task = (await raw_tool_call(http, url, "create_media_buy", held))["result"]
    assert "task_id" in task["structuredContent"], task
    seeded = {"creative_id": "cr_sweep", "fixture": {"format_id": {"id": "display_300x250"}}}
    creative = {"scenario": "seed_creative", "account": SANDBOX, "params": seeded}
    assert (await raw_tool_call(http, url, CONTROLLER, creative))["result"]["structuredContent"][
        "success"
    ]
    accounts = (await raw_tool_call(http, url, "list_accounts", {}))["result"]["structuredContent"]
    return {
        "mb_sweep": buy["media_buy_id"],
        "acc_sweep": accounts["accounts"][0]["account_id"],
        "task_sweep": task["structuredContent"]["task_id"],
    }


def _failed_inside(answer: dict[str, Any]) -> str | None:
    """What says the controller failed on its own side, or None."""
    if "error" in answer:
        return f"JSON-RPC error {answer['error']}"
    text = json.dumps(answer["result"])
    if CRASHED in text:
        return "failed unexpectedly"
    content = answer["result"].get("structuredContent") or {}
    if content.get("error") == "INTERNAL_ERROR":
        return f"INTERNAL_ERROR: {content.get('error_detail')}"
    return None


async def test_no_malformed_param_makes_the_controller_fail(sbx: SandboxServer) -> None:
    assert set(BASE) == set(SCENARIOS)  # a new scenario joins the sweep
    headers = {**RAW_HEADERS, "authorization": f"Bearer {SBX_TOKEN}"}
    crashed: list[tuple[str, str, str, str]] = []
    calls = 0
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        real = await _real_ids(http, sbx.mcp_url)
        for scenario, base in BASE.items():
            base = {k: real.get(v, v) if isinstance(v, str) else v for k, v in base.items()}
            fields = list(SCENARIOS[scenario].params.model_fields)
            for field in fields:
                for value in MALFORMED:
                    params = copy.deepcopy(base)
                    params[field] = value
                    arguments = {"scenario": scenario, "account": SANDBOX, "params": params}
                    answer = await raw_tool_call(http, sbx.mcp_url, CONTROLLER, arguments)
                    calls += 1
                    if (problem := _failed_inside(answer)) is not None:
                        crashed.append((scenario, field, repr(value)[:40], problem[:200]))
    assert calls > 500
    assert crashed == [], crashed
