"""comply_test_controller over streamable HTTP: who sees it, forced states through the
real state machines, one-shot arms, forced upstream outages, unsupported scenarios."""

from __future__ import annotations

import asyncio

from tests.conftest import OTHER_TOKEN
from tests.sandbox_support import (
    CONTROLLER,
    PROD_SBX_TOKEN,
    SANDBOX,
    SBX_OTHER_TOKEN,
    SBX_TOKEN,
    SandboxServer,
    control,
    ng_buy,
    sbx,
    sbx_postgres,
    sbx_sqlite,
)
from tests.support import DEMO_TOKEN, assert_valid, call, mcp_client

__all__ = ["sbx", "sbx_postgres", "sbx_sqlite"]  # the module-scoped sandbox server fixture


async def _tool_names(url: str, token: str | None) -> set[str]:
    async with mcp_client(url, token) as client:
        return {t.name for t in await client.list_tools()}


async def test_production_callers_neither_see_nor_call_the_controller(sbx: SandboxServer) -> None:
    assert CONTROLLER not in await _tool_names(sbx.mcp_url, DEMO_TOKEN)
    assert CONTROLLER not in await _tool_names(sbx.mcp_url, None)
    assert CONTROLLER in await _tool_names(sbx.mcp_url, SBX_TOKEN)  # a sandbox tenant
    args = {"scenario": "list_scenarios", "account": SANDBOX}
    async with mcp_client(sbx.mcp_url, DEMO_TOKEN) as client:
        refused = await call(client, CONTROLLER, args)
        unknown = await call(client, "no_such_tool", args)
        caps = await call(client, "get_adcp_capabilities")
        buy = await call(client, "create_media_buy", ng_buy())
    async with mcp_client(sbx.mcp_url) as anonymous:
        anonymous_refused = await call(anonymous, CONTROLLER, args)
    # Indistinguishable from a tool that does not exist, with or without a token.
    for answer in (refused, anonymous_refused):
        assert answer.is_error
        assert answer.data == {
            **unknown.data,
            "errors": [{**unknown.error, "message": f"Unknown tool '{CONTROLLER}'."}],
            "adcp_error": {**unknown.error, "message": f"Unknown tool '{CONTROLLER}'."},
        }
    assert "compliance_testing" not in caps.data

    # A production principal that declares a sandbox account gets the controller, but it
    # never reaches production data.
    async with mcp_client(sbx.mcp_url, PROD_SBX_TOKEN) as client:
        assert CONTROLLER not in {t.name for t in await client.list_tools()}
        synced = await call(
            client,
            "sync_accounts",
            {"accounts": [{"brand": {"domain": "acme.example"}, "operator": "acme.example",
                           "billing": "operator", "sandbox": True}]},
        )  # fmt: skip
        assert CONTROLLER in {t.name for t in await client.list_tools()}
        caps = await call(client, "get_adcp_capabilities")
        own_prod = await call(client, "create_media_buy", ng_buy())
        listed = await control(client, "list_scenarios")
        on_prod = await control(
            client,
            "force_media_buy_status",
            {"media_buy_id": own_prod.data["media_buy_id"], "status": "paused"},
        )
        foreign = await control(
            client,
            "force_media_buy_status",
            {"media_buy_id": buy.data["media_buy_id"], "status": "paused"},
        )
        catalog = await control(client, "seed_product", {"product_id": "sbx_test_product"})
    assert_valid("get_adcp_capabilities", caps.data)
    assert "force_media_buy_status" in caps.data["compliance_testing"]["scenarios"]
    assert synced.data["accounts"][0]["sandbox"] is True
    assert {"force_media_buy_status", "simulate_delivery", "seed_media_buy"} <= set(
        listed.data["scenarios"]
    )
    assert on_prod.data["error"] == "FORBIDDEN"
    assert foreign.data["error"] == "NOT_FOUND"  # another buyer's buy: not even named
    assert catalog.data["error"] == "FORBIDDEN"  # the demo catalog is production's


async def test_force_media_buy_status_runs_the_state_machine(sbx: SandboxServer) -> None:
    async with mcp_client(sbx.mcp_url, SBX_TOKEN) as client:
        seeded = await control(
            client,
            "seed_media_buy",
            {"media_buy_id": "mb_sbx_guaranteed", "fixture": {"product_id": "ctv_sports_premium",
                                                              "total_budget": 20000}},
        )  # fmt: skip
        pending = await call(
            client, "check_media_buy_status", {"media_buy_id": "mb_sbx_guaranteed"}
        )
        to_start = {"media_buy_id": "mb_sbx_guaranteed", "status": "pending_start"}
        approved = await control(client, "force_media_buy_status", to_start)
        again = await control(client, "force_media_buy_status", to_start)
        active = await control(client, "force_media_buy_status", {**to_start, "status": "active"})
        paused = await control(client, "force_media_buy_status", {**to_start, "status": "paused"})
        completed = await control(
            client, "force_media_buy_status", {**to_start, "status": "completed"}
        )
        back = await control(client, "force_media_buy_status", {**to_start, "status": "active"})
        listed = await call(client, "get_media_buys", {"media_buy_ids": ["mb_sbx_guaranteed"]})
        tasks = await call(client, "list_tasks", {})
        rejected_buy = await control(
            client,
            "seed_media_buy",
            {"media_buy_id": "mb_sbx_rejected", "fixture": {"product_id": "ctv_sports_premium",
                                                            "total_budget": 20000}},
        )  # fmt: skip
        reject = await control(
            client,
            "force_media_buy_status",
            {"media_buy_id": "mb_sbx_rejected", "status": "rejected",
             "rejection_reason": "Category not accepted"},
        )  # fmt: skip
        cancel = await control(
            client, "force_media_buy_status", {"media_buy_id": "mb_sbx_rejected",
                                               "status": "canceled"}
        )  # fmt: skip
        unknown = await control(
            client, "force_media_buy_status", {"media_buy_id": "mb_nope", "status": "active"}
        )
    assert seeded.data["success"] is True
    assert pending.data["media_buy_status"] == "pending_approval"
    assert (approved.data["previous_state"], approved.data["current_state"]) == (
        "pending_approval",
        "pending_start",
    )
    # A replay converges: same state, and the answer says nothing moved.
    assert again.data["previous_state"] == again.data["current_state"] == "pending_start"
    assert (active.data["previous_state"], active.data["current_state"]) == (
        "pending_start",
        "active",
    )
    assert paused.data["current_state"] == "paused"
    assert completed.data["current_state"] == "completed"
    assert back.data["error"] == "INVALID_TRANSITION"
    assert back.data["current_state"] == "completed"
    [buy] = listed.data["media_buys"]
    assert buy["status"] == "completed" and buy["revision"] > 1
    # The approval went through the real workflow: its task is completed.
    assert {t["status"] for t in tasks.data["tasks"] if t["task_type"] == "create_media_buy"} >= {
        "completed"
    }
    assert rejected_buy.data["success"] is True
    assert reject.data["current_state"] == "rejected"
    assert cancel.data["error"] == "INVALID_TRANSITION"
    assert cancel.data["current_state"] == "rejected"
    assert unknown.data["error"] == "NOT_FOUND"


async def test_force_creative_account_and_task_states(sbx: SandboxServer) -> None:
    async with mcp_client(sbx.mcp_url, SBX_TOKEN) as client:
        await control(
            client,
            "seed_creative",
            {"creative_id": "cr_sbx_state", "fixture": {"format_id": {"id": "display_300x250"}}},
        )
        suspend = {"creative_id": "cr_sbx_state", "status": "suspended"}
        suspended = await control(client, "force_creative_status", suspend)
        replay = await control(client, "force_creative_status", suspend)
        archived = await control(client, "force_creative_status", {**suspend, "status": "archived"})
        revive = await control(client, "force_creative_status", {**suspend, "status": "approved"})
        library = await call(
            client, "list_creatives", {"filters": {"creative_ids": ["cr_sbx_state"]}}
        )
        accounts = await call(client, "list_accounts", {})
        account_id = accounts.data["accounts"][0]["account_id"]
        status = {"account_id": account_id, "status": "suspended"}
        off = await control(client, "force_account_status", status)
        blocked = await call(client, "create_media_buy", ng_buy())
        on = await control(client, "force_account_status", {**status, "status": "active"})
        booked = await call(client, "create_media_buy", ng_buy())
        bad_status = await control(client, "force_account_status", {**status, "status": "gone"})
        await control(
            client,
            "seed_media_buy",
            {"media_buy_id": "mb_sbx_task", "fixture": {"product_id": "ctv_sports_premium",
                                                        "total_budget": 20000}},
        )  # fmt: skip
        submitted = await call(client, "list_tasks", {"filters": {"status": "submitted"}})
        [task_id] = [t["task_id"] for t in submitted.data["tasks"] if "mb_sbx_task" in t["message"]]
        result = {"media_buy_id": "mb_sbx_task", "packages": [], "note": "signed"}
        wrong = await control(
            client,
            "force_task_completion",
            {"task_id": task_id, "result": {**result, "media_buy_id": "mb_other"}},
        )
        completed = await control(
            client, "force_task_completion", {"task_id": task_id, "result": result}
        )
        booked_now = await call(client, "get_media_buys", {"media_buy_ids": ["mb_sbx_task"]})
    assert (suspended.data["previous_state"], suspended.data["current_state"]) == (
        "approved",
        "suspended",
    )
    assert replay.data["previous_state"] == replay.data["current_state"] == "suspended"
    assert archived.data["current_state"] == "archived"
    assert revive.data["error"] == "INVALID_TRANSITION"
    assert revive.data["current_state"] == "archived"
    assert library.data["creatives"][0]["status"] == "archived"
    assert (off.data["previous_state"], off.data["current_state"]) == ("active", "suspended")
    assert blocked.error_codes == ["ACCOUNT_SUSPENDED"]
    assert on.data["current_state"] == "active"
    assert not booked.is_error, booked.data
    assert bad_status.data["error"] == "INVALID_PARAMS"
    # A real buy's task completes through the approval workflow: the buy is booked.
    assert wrong.data["error"] == "INVALID_PARAMS"
    assert (completed.data["previous_state"], completed.data["current_state"]) == (
        "submitted",
        "completed",
    )
    assert booked_now.data["media_buys"][0]["status"] == "pending_start"


async def test_one_shot_arms_fire_exactly_once(sbx: SandboxServer) -> None:
    arm = {"arm": "submitted", "task_id": "task_sbx_forced_io", "message": "Awaiting IO."}
    async with mcp_client(sbx.mcp_url, SBX_TOKEN) as client:
        registered = await control(client, "force_create_media_buy_arm", arm)
        invalid = await call(client, "create_media_buy", ng_buy(budget=1))  # real error first
        forced = await call(client, "create_media_buy", ng_buy())
        normal = await call(client, "create_media_buy", ng_buy())
        polled = await call(client, "get_task_status", {"task_id": "task_sbx_forced_io"})
        result = {"media_buy_id": "mb_forced_io", "packages": [{"package_id": "pkg_0"}]}
        complete = {"task_id": "task_sbx_forced_io", "result": result}
        done = await control(client, "force_task_completion", complete)
        replay = await control(client, "force_task_completion", complete)
        diverge = await control(
            client, "force_task_completion", {**complete, "result": {**result, "media_buy_id": "x"}}
        )
        finished = await call(client, "get_task_status", {"task_id": "task_sbx_forced_io"})
        await control(client, "force_create_media_buy_arm", {"arm": "input-required"})
        needs_input = await call(client, "create_media_buy", ng_buy())
        await control(client, "force_get_products_arm", {"arm": "submitted", "task_id": "task_gp"})
        products = await call(client, "get_products", {"brief": "sports video"})
        products_again = await call(client, "get_products", {"brief": "sports video"})
        await control(client, "force_get_signals_arm", {"arm": "submitted", "task_id": "task_gs"})
        signals = await call(client, "get_signals", {"signal_spec": "car buyers"})
        signals_again = await call(client, "get_signals", {"signal_spec": "car buyers"})
    async with mcp_client(sbx.mcp_url, SBX_OTHER_TOKEN) as other:
        foreign = await call(other, "get_task_status", {"task_id": "task_sbx_forced_io"})
    assert registered.data["forced"] == {"arm": "submitted", "task_id": "task_sbx_forced_io"}
    assert invalid.error_codes == ["BUDGET_TOO_LOW"]
    assert forced.data["status"] == "submitted"
    assert forced.data["task_id"] == "task_sbx_forced_io" and "media_buy_id" not in forced.data
    assert forced.data["message"] == "Awaiting IO."
    assert_valid("create_media_buy", forced.data)
    assert normal.data["status"] == "completed" and normal.data["media_buy_id"]
    assert polled.data["status"] == "submitted"
    assert_valid("get_task_status", polled.data)
    assert (done.data["previous_state"], done.data["current_state"]) == ("submitted", "completed")
    assert replay.data["previous_state"] == replay.data["current_state"] == "completed"
    assert diverge.data["error"] == "INVALID_TRANSITION"
    assert finished.data["status"] == "completed"
    assert finished.data["result"] == result  # the caller's payload, verbatim
    assert_valid("get_task_status", finished.data)
    assert needs_input.data["status"] == "input-required"
    assert_valid("create_media_buy", needs_input.data)
    assert (products.data["status"], products.data["task_id"]) == ("submitted", "task_gp")
    assert_valid("get_products", products.data)
    assert products_again.data["products"]
    assert (signals.data["status"], signals.data["task_id"]) == ("submitted", "task_gs")
    assert_valid("get_signals", signals.data)
    assert signals_again.data["signals"]
    assert foreign.error_codes == ["REFERENCE_NOT_FOUND"]


async def test_a_directive_fires_once_under_concurrent_calls(sbx: SandboxServer) -> None:
    async with mcp_client(sbx.mcp_url, SBX_TOKEN) as client:
        arm = {"arm": "submitted", "task_id": "task_gp_race"}
        await control(client, "force_get_products_arm", arm)

    async def browse() -> str:
        async with mcp_client(sbx.mcp_url, SBX_TOKEN) as c:
            answer = await call(c, "get_products", {"brief": "sports video"})
        assert not answer.is_error, answer.data
        return str(answer.data["status"])

    statuses = await asyncio.gather(*(browse() for _ in range(5)))
    assert sorted(statuses) == ["completed"] * 4 + ["submitted"]


async def test_forced_upstream_outage_fails_transient_until_reset(sbx: SandboxServer) -> None:
    down = {"tool": "create_media_buy", "upstream_name": "mock-ad-server"}
    async with mcp_client(sbx.mcp_url, SBX_TOKEN) as client:
        forced = await control(client, "force_upstream_unavailable", down)
        replay = await control(client, "force_upstream_unavailable", down)
        failed = await call(client, "create_media_buy", ng_buy(buyer_ref="outage"))
        listed = await call(client, "get_media_buys", {})
        reset = await control(client, "force_upstream_unavailable", {**down, "reset": True})
        works = await call(client, "create_media_buy", ng_buy(buyer_ref="after-outage"))
        no_upstream = await control(client, "force_upstream_unavailable", {"tool": "get_products"})
    assert (forced.data["previous_state"], forced.data["current_state"]) == (
        "available",
        "unavailable",
    )
    assert replay.data["previous_state"] == replay.data["current_state"] == "unavailable"
    assert failed.error_codes == ["SERVICE_UNAVAILABLE"]
    assert failed.error["recovery"] == "transient"
    assert failed.error["details"]["upstream"]["name"] == "mock-ad-server"
    assert_valid("create_media_buy", failed.data)
    # Nothing was left claiming success: the refused buy does not exist.
    assert "outage" not in {
        b.get("context", {}).get("buyer_ref") for b in listed.data["media_buys"]
    }
    assert reset.data["current_state"] == "available"
    assert not works.is_error, works.data
    assert no_upstream.data["error"] == "INVALID_PARAMS"


async def test_unsupported_unknown_and_malformed_requests_are_answers(sbx: SandboxServer) -> None:
    async with mcp_client(sbx.mcp_url, SBX_TOKEN) as client:
        session = await control(
            client, "force_session_status", {"session_id": "s1", "status": "terminated"}
        )
        made_up = await control(client, "made_up_scenario", {"x": 1})
        missing = await control(client, "force_media_buy_status", {"media_buy_id": "mb_x"})
        production = await call(
            client,
            CONTROLLER,
            {"scenario": "force_media_buy_status", "account": {"sandbox": False},
             "params": {"media_buy_id": "mb_x", "status": "active"}},
        )  # fmt: skip
        echoed = await control(client, "list_scenarios", context={"trace_id": "run-17"})
    for answer in (session, made_up):
        assert answer.data["success"] is False
        assert answer.data["error"] == "UNKNOWN_SCENARIO"
        assert answer.data["error_detail"]
    assert missing.data["error"] == "INVALID_PARAMS" and "status" in missing.data["error_detail"]
    assert production.data["error"] == "FORBIDDEN"
    assert echoed.data["context"] == {"trace_id": "run-17"}


async def test_an_unknown_token_gets_the_unknown_tool_answer(sbx: SandboxServer) -> None:
    """Not AUTH_INVALID: that would confirm the tool exists."""
    async with mcp_client(sbx.mcp_url, OTHER_TOKEN) as client:  # not a principal here
        refused = await call(client, CONTROLLER, {"scenario": "list_scenarios", "account": SANDBOX})
    assert refused.is_error and refused.error_codes == ["INVALID_REQUEST"]
    assert refused.error["message"] == f"Unknown tool '{CONTROLLER}'."


async def test_a_forced_cancellation_is_the_sellers(sbx: SandboxServer) -> None:
    async with mcp_client(sbx.mcp_url, SBX_TOKEN) as client:
        await control(
            client,
            "seed_media_buy",
            {"media_buy_id": "mb_sbx_seller_cancel",
             "fixture": {"product_id": "ctv_sports_premium", "total_budget": 20000}},
        )  # fmt: skip
        forced = await control(
            client,
            "force_media_buy_status",
            {"media_buy_id": "mb_sbx_seller_cancel", "status": "canceled"},
        )
        listed = await call(client, "get_media_buys", {"media_buy_ids": ["mb_sbx_seller_cancel"]})
    assert forced.data["success"] is True, forced.data
    assert_valid("get_media_buys", listed.data)
    [buy] = listed.data["media_buys"]
    assert buy["status"] == "canceled" and buy["cancellation"]["canceled_by"] == "seller"
