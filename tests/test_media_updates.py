"""Managing booked buys: every update form, the state machine, approvals through the
CLI, optimistic concurrency and partial ad-server failures."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

from adcp_agent_adapters.mock import load_state

from tests.media_helpers import guaranteed, key, non_guaranteed, own_tenant
from tests.support import DEMO_TOKEN, LiveServer, assert_valid, call, mcp_client


def _line(live: LiveServer, tenant: str, media_buy_id: str, package_id: str):  # type: ignore[no-untyped-def]
    """What the (mock) ad server holds for a package: the adapter's persisted state."""
    path = live.data_dir / "adapters" / f"{tenant}-mock.state"
    orders, _ = load_state(path)
    for order in orders.values():
        if order.spec.media_buy_id == media_buy_id:
            for line in order.lines.values():
                if line.spec.package_id == package_id:
                    return order, line
    raise AssertionError("line not found in the ad server")


def _two_package_buy() -> dict:
    args = non_guaranteed(budget=4000)
    args["packages"].append(
        {
            "product_id": "display_sports_section",
            "pricing_option_id": "sports_display_auction",
            "bid_price": 7.0,
            "budget": 3000,
            "targeting_overlay": {"geo_countries": ["US"]},
        }
    )
    return args


async def test_every_update_form_on_a_non_guaranteed_buy(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        created = await call(c, "create_media_buy", _two_package_buy())
        mb = created.data["media_buy_id"]
        p1, p2 = (p["package_id"] for p in created.data["packages"])

        async def upd(args: dict) -> dict:
            result = await call(
                c, "update_media_buy", {"media_buy_id": mb, **args, "idempotency_key": key("u")}
            )
            assert not result.is_error, (args, result.data)
            assert_valid("update_media_buy", result.data)
            return result.data

        paused = await upd({"paused": True})
        assert paused["media_buy_status"] == "paused"
        assert "resume" in paused["valid_actions"]
        assert (await upd({"paused": False}))["media_buy_status"] == "pending_start"
        alias = await call(c, "pause_media_buy", {"media_buy_id": mb, "reason": "creative swap"})
        assert alias.data["media_buy_status"] == "paused"
        alias = await call(c, "resume_media_buy", {"media_buy_id": mb})
        assert alias.data["media_buy_status"] == "pending_start"

        budget = await upd({"action": "update_package_budget", "package_id": p1, "budget": 6000})
        assert budget["total_budget"] == 9000
        assert budget["affected_packages"][0]["impressions"] == 1_500_000
        imps = await upd(
            {"action": "update_package_impressions", "package_id": p2, "impressions": 500_000}
        )
        assert imps["affected_packages"][0]["budget"] == 3500  # 500k at 7.00 CPM
        await upd({"action": "pause_package", "package_id": p1})
        order, line = _line(live, "demo", mb, p1)
        assert line.status == "paused" and line.spec.budget == 6000
        await upd({"action": "resume_package", "package_id": p1})
        activated = await upd({"action": "activate_order"})
        assert activated["media_buy_status"] == "pending_start"

        # Operations apply to every package and are validated before anything changes:
        # the sports section does not serve Canada, so nothing is applied.
        refused = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "updates": {"add_geo": {"countries": ["CA"]}}},
        )
        assert refused.error_codes == ["VALIDATION_ERROR"]
        assert "display_sports_section" in refused.error["message"]
        geo = await upd({"updates": {"add_geo": {"countries": ["US"]}}})
        assert geo["affected_packages"][0]["targeting_overlay"]["geo_countries"] == ["US"]
        emptied = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "updates": {"remove_geo": {"countries": ["US"]}}},
        )
        assert "no country to deliver in" in emptied.error["message"]
        await upd({"updates": {"adjust_bid": {"device": "mobile", "change_percent": -20}}})
        _, line = _line(live, "demo", mb, p1)
        assert line.device_bid_adjustments == {"mobile": -20.0}
        await upd({"updates": {"set_daily_cap": {"amount": 900}}})
        _, line = _line(live, "demo", mb, p1)
        assert line.daily_budget == 568.42  # the cap split by budget share: 900 * 6000 / 9500
        shifted = await upd(
            {
                "updates": {
                    "shift_budget": {"from_package_id": p1, "to_package_id": p2, "percent": 10}
                }
            }
        )
        budgets = {p["package_id"]: p["budget"] for p in shifted["affected_packages"]}
        assert budgets == {p1: 5400, p2: 4100}
        await upd({"updates": {"set_status": {"status": "paused"}}})

        patch = await upd(
            {
                "paused": False,
                "packages": [
                    {
                        "package_id": p1,
                        "bid_price": 5.5,
                        "pacing": "front_loaded",
                        "targeting_overlay": {"geo_countries": ["GB"], "device_type": ["mobile"]},
                    },
                ],
            }
        )
        pkg = patch["affected_packages"][0]
        assert pkg["bid_price"] == 5.5 and pkg["pacing"] == "front_loaded"
        assert pkg["targeting_overlay"] == {"geo_countries": ["GB"], "device_type": ["mobile"]}
        _, line = _line(live, "demo", mb, p1)
        assert line.spec.rate == 5.5 and line.spec.targeting.geo_countries == ("GB",)

        later = created.data["packages"][0]["end_time"].replace("T", " ")[:10]
        end = await upd({"end_time": f"{later}T23:00:00Z"})
        assert end["revision"] > created.data["revision"]

        canceled = await upd({"canceled": True})
        assert canceled["media_buy_status"] == "canceled"
        archived = await upd({"action": "archive_order"})
        assert archived["valid_actions"] == []
        after = await call(c, "update_media_buy", {"media_buy_id": mb, "paused": True})
    assert after.error_codes == ["INVALID_STATE"]
    assert "Allowed now: none" in after.error["message"]
    assert_valid("update_media_buy", after.data)


async def test_illegal_transitions_and_bad_updates_are_typed(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        created = await call(c, "create_media_buy", non_guaranteed(budget=2000))
        mb = created.data["media_buy_id"]
        pkg = created.data["packages"][0]["package_id"]
        resume_live = await call(c, "update_media_buy", {"media_buy_id": mb, "paused": False})
        archive_live = await call(
            c, "update_media_buy", {"media_buy_id": mb, "action": "archive_order"}
        )
        stale = await call(
            c, "update_media_buy", {"media_buy_id": mb, "revision": 99, "paused": True}
        )
        low = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "packages": [{"package_id": pkg, "budget": 10}]},
        )
        under_floor = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "packages": [{"package_id": pkg, "bid_price": 1.0}]},
        )
        ghost_pkg = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "packages": [{"package_id": "pkg_nope", "budget": 3000}]},
        )
        immutable = await call(
            c,
            "update_media_buy",
            {
                "media_buy_id": mb,
                "packages": [{"package_id": pkg, "product_id": "ctv_sports_premium"}],
            },
        )
        two_forms = await call(
            c, "update_media_buy", {"media_buy_id": mb, "paused": True, "action": "pause_media_buy"}
        )
        audience = await call(
            c,
            "update_media_buy",
            {
                "media_buy_id": mb,
                "updates": {
                    "shift_budget": {"from_audience": "a", "to_audience": "b", "percent": 5}
                },
            },
        )
        unknown_buy = await call(c, "update_media_buy", {"media_buy_id": "mb_nope", "paused": True})
        submit_ng = await call(
            c, "update_media_buy", {"media_buy_id": mb, "action": "submit_for_approval"}
        )
        approve = await call(c, "update_media_buy", {"media_buy_id": mb, "action": "approve_order"})
    expectations = {
        "INVALID_STATE": [resume_live, archive_live],
        "CONFLICT": [stale],
        "BUDGET_TOO_LOW": [low],
        "VALIDATION_ERROR": [under_floor],
        "PACKAGE_NOT_FOUND": [ghost_pkg],
        "UNSUPPORTED_FEATURE": [immutable, audience],
        "INVALID_REQUEST": [two_forms, submit_ng],
        "MEDIA_BUY_NOT_FOUND": [unknown_buy],
        "PERMISSION_DENIED": [approve],
    }
    for code, results in expectations.items():
        for r in results:
            assert r.error_codes == [code], (code, r.data)
            assert_valid("update_media_buy", r.data)
    assert "Allowed now: pause, cancel" in resume_live.error["message"]
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        two = await call(
            c,
            "create_media_buy",
            non_guaranteed(budget=2000, targeting_overlay={"geo_countries": ["US", "CA"]}),
        )
        removed = await call(
            c,
            "update_media_buy",
            {
                "media_buy_id": two.data["media_buy_id"],
                "updates": {"remove_geo": {"countries": ["CA"]}},
            },
        )
    assert removed.data["affected_packages"][0]["targeting_overlay"]["geo_countries"] == ["US"]
    assert stale.error["details"]["current_revision"] == 1
    assert low.error["field"] == "packages[0].budget"
    assert immutable.error["field"] == "packages[0].product_id"


async def test_guaranteed_reject_resubmit_and_approve_through_the_cli(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        submitted = await call(c, "create_media_buy", guaranteed(budget=15000))
        task_id = submitted.data["task_id"]
        mb = submitted.data["message"].split()[2]
        activate = await call(
            c, "update_media_buy", {"media_buy_id": mb, "action": "activate_order"}
        )
    assert activate.error_codes == ["INVALID_STATE"]
    assert "Use submit_for_approval instead" in activate.error["message"]

    def cli(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "adcp_agent.cli", *args, "--data-dir", str(live.data_dir)],
            capture_output=True,
            text=True,
            check=True,
            env=live.cli_env(),
        )
        return out.stdout

    assert task_id in cli("tasks", "--tenant", "demo")
    assert "rejected" in cli("approve", task_id, "--reject", "--reason", "sold out in Dec")
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        rejected = await call(c, "get_task_status", {"task_id": task_id})
        resubmitted = await call(
            c, "update_media_buy", {"media_buy_id": mb, "action": "submit_for_approval"}
        )
    assert rejected.data["status"] == "rejected"
    assert "sold out in Dec" in rejected.data["error"]["message"]
    assert_valid("get_task_status", rejected.data)
    assert resubmitted.data["status"] == "submitted"
    assert_valid("update_media_buy", resubmitted.data)
    new_task = resubmitted.data["task_id"]
    assert "live" in cli("approve", new_task)
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        done = await call(c, "get_task_status", {"task_id": new_task})
        tasks = await call(c, "list_tasks", {"filters": {"statuses": ["rejected"]}})
    assert done.data["result"]["media_buy_id"] == mb
    assert task_id in {t["task_id"] for t in tasks.data["tasks"]}
    assert_valid("list_tasks", tasks.data)
    order, _ = _line(live, "demo", mb, done.data["result"]["packages"][0]["package_id"])
    assert order.status == "delivering"


async def test_partial_ad_server_failure_commits_only_what_was_applied(
    live: LiveServer,
) -> None:
    token = "adcp_test_halfbroken_token_0000000000"
    await own_tenant(live.settings, "half", token, ["update_line"])
    async with mcp_client(live.mcp_url, token) as c:
        created = await call(c, "create_media_buy", non_guaranteed(budget=2000))
        mb = created.data["media_buy_id"]
        pkg = created.data["packages"][0]["package_id"]
        failed = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "paused": True, "packages": [{"package_id": pkg, "budget": 2500}]},
        )
        state = await call(c, "get_media_buys", {"media_buy_ids": [mb]})
    assert failed.error_codes == ["SERVICE_UNAVAILABLE"]
    assert failed.error["details"]["applied"] == ["order pause"]
    buy = state.data["media_buys"][0]
    assert buy["status"] == "paused"  # the pause reached the ad server, so it is recorded
    assert buy["packages"][0]["budget"] == 2000  # the budget change did not, so it is not
    assert buy["revision"] == 2


async def test_a_cancellation_says_who_when_and_why(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        created = await call(c, "create_media_buy", non_guaranteed(budget=2000))
        mb = created.data["media_buy_id"]
        alone = await call(
            c, "update_media_buy", {"media_buy_id": mb, "cancellation_reason": "Budget cut"}
        )
        too_long = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "canceled": True, "cancellation_reason": "x" * 501},
        )
        canceled = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "canceled": True, "cancellation_reason": "Budget cut"},
        )
        listed = await call(c, "get_media_buys", {"media_buy_ids": [mb]})
        live_buy = await call(c, "create_media_buy", non_guaranteed(budget=2000))
        still = await call(c, "get_media_buys", {"media_buy_ids": [live_buy.data["media_buy_id"]]})
    assert alone.is_error and alone.error["field"] == "cancellation_reason"
    assert too_long.is_error and too_long.error["field"] == "cancellation_reason"
    assert not canceled.is_error, canceled.data
    assert_valid("get_media_buys", listed.data)
    [buy] = listed.data["media_buys"]
    assert buy["status"] == "canceled"
    cancellation = buy["cancellation"]
    assert (cancellation["canceled_by"], cancellation["reason"]) == ("buyer", "Budget cut")
    assert cancellation["canceled_at"] >= buy["created_at"]
    assert "cancellation" not in still.data["media_buys"][0]


async def test_a_package_is_canceled_on_its_own(live: LiveServer) -> None:
    """packages[].canceled: the package stops for good (its line paused at the ad
    server), says who canceled it, when and why, and takes no more changes; the rest of
    the buy goes on. The last running package is the buy's to cancel."""
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        created = await call(c, "create_media_buy", _two_package_buy())
        mb = created.data["media_buy_id"]
        p1, p2 = (p["package_id"] for p in created.data["packages"])

        async def upd(*packages: dict) -> Any:
            return await call(
                c, "update_media_buy", {"media_buy_id": mb, "packages": list(packages)}
            )

        reason_alone = await upd({"package_id": p2, "cancellation_reason": "Underperforming"})
        canceled = await upd(
            {"package_id": p2, "canceled": True, "cancellation_reason": "Underperforming"}
        )
        again = await upd({"package_id": p2, "canceled": True})
        resumed = await upd({"package_id": p2, "paused": False})
        budget = await upd({"package_id": p2, "budget": 5000})
        last = await upd({"package_id": p1, "canceled": True})
        other = await upd({"package_id": p1, "budget": 4500})
        listed = await call(c, "get_media_buys", {"media_buy_ids": [mb], "include_history": 10})
    assert reason_alone.error_codes == ["INVALID_REQUEST"]
    assert reason_alone.error["field"] == "packages[0].cancellation_reason"
    assert not canceled.is_error, canceled.data
    assert_valid("update_media_buy", canceled.data)
    for refused in (again, resumed, budget):
        assert refused.error_codes == ["INVALID_STATE"], refused.data
    assert (
        last.error_codes == ["INVALID_REQUEST"]
        and "Cancel the media buy" in last.error["suggestion"]
    )
    assert not other.is_error, other.data
    assert_valid("get_media_buys", listed.data)
    [buy] = listed.data["media_buys"]
    packages = {p["package_id"]: p for p in buy["packages"]}
    assert packages[p2]["canceled"] is True and packages[p2]["paused"] is True
    cancellation = packages[p2]["cancellation"]
    assert (cancellation["canceled_by"], cancellation["reason"]) == ("buyer", "Underperforming")
    assert "canceled" not in packages[p1] and packages[p1]["budget"] == 4500
    assert buy["status"] == "pending_start"  # the buy itself runs on
    # Two running packages: one may be removed; one left: it is the buy's to cancel.
    assert "remove_packages" in created.data["valid_actions"]
    assert "remove_packages" not in canceled.data["valid_actions"]
    assert "remove_packages" not in buy["valid_actions"]
    assert [h["action"] for h in buy["history"]][:2] == ["updated_budget", "package_canceled"]
    assert buy["history"][1]["package_id"] == p2
    _order, line = _line(live, "demo", mb, p2)
    assert line.status == "paused"


async def test_canceling_a_guaranteed_package_gives_its_inventory_back(live: LiveServer) -> None:
    """A guaranteed package holds inventory from booking (awaiting approval included);
    canceled, it holds none, and get_avails offers it again."""
    args = guaranteed(budget=20000)
    args["packages"].append(dict(args["packages"][0]))
    flight = {
        "product_ids": ["ctv_sports_premium"],
        "flight_start_date": args["start_time"][:10],
        "flight_end_date": args["end_time"][:10],
    }
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        before = await call(c, "get_avails", flight)
        submitted = await call(c, "create_media_buy", args)
        held = await call(c, "get_avails", flight)
        [mb] = re.findall(r"mb_[0-9a-f]+", submitted.data["message"])
        buys = await call(c, "get_media_buys", {"media_buy_ids": [mb]})
        p2 = buys.data["media_buys"][0]["packages"][1]["package_id"]
        canceled = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "packages": [{"package_id": p2, "canceled": True}]},
        )
        after = await call(c, "get_avails", flight)
    assert not canceled.is_error, canceled.data

    def reserved(result: Any) -> int:
        return int(result.data["packages"][0]["reserved_impressions"])

    both = reserved(held) - reserved(before)
    assert both > 0
    assert abs((reserved(after) - reserved(before)) - both / 2) <= 2  # one of two given back
