"""The creative library over streamable HTTP: upsert, validation, assignment, the
approval policy, pushing to the ad server, and the seed aliases."""

from __future__ import annotations

from pathlib import Path

from adcp_agent_adapters.mock import load_state
from sqlmodel import select

from adcp_agent.db.models_events import OutboxEvent
from tests.creative_helpers import careful_publisher, display, sync_args, video
from tests.media_helpers import non_guaranteed
from tests.support import DEMO_TOKEN, LiveServer, assert_valid, call, mcp_client
from tests.tenant_admin_support import admin_api


def _adserver(data_dir: Path, tenant: str):  # type: ignore[no-untyped-def]
    return load_state(data_dir / "adapters" / f"{tenant}-mock.state")


async def test_sync_assign_push_and_upsert(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        buy = await call(c, "create_media_buy", non_guaranteed(budget=3000))
        pkg = buy.data["packages"][0]["package_id"]
        first = await call(
            c,
            "sync_creatives",
            sync_args(
                [display("cr_banner_a"), display("cr_banner_b", 728, 90)],
                [
                    {"creative_id": "cr_banner_a", "package_id": pkg},
                    {"creative_id": "cr_banner_b", "package_id": pkg},
                ],
            ),
        )
        again = await call(c, "sync_creatives", sync_args([display("cr_banner_a")]))
        changed = display("cr_banner_a")
        changed["assets"]["clickthrough_url"]["url"] = "https://acme.example/new"
        updated = await call(c, "sync_creatives", sync_args([changed]))
        listed = await call(
            c, "list_creatives", {"filters": {"media_buy_ids": [buy.data["media_buy_id"]]}}
        )
        buys = await call(c, "get_media_buys", {"media_buy_ids": [buy.data["media_buy_id"]]})
    assert not first.is_error, first.data
    assert_valid("sync_creatives", first.data)
    items = {i["creative_id"]: i for i in first.data["creatives"]}
    assert items["cr_banner_a"]["action"] == "created"
    assert items["cr_banner_a"]["status"] == "approved"  # the demo tenant auto-approves
    assert items["cr_banner_a"]["assigned_to"] == [pkg]
    assert again.data["creatives"][0]["action"] == "unchanged"
    assert updated.data["creatives"][0]["action"] == "updated"
    assert updated.data["creatives"][0]["changes"] == ["assets.clickthrough_url"]
    assert_valid("list_creatives", listed.data)
    assert {x["creative_id"] for x in listed.data["creatives"]} == {"cr_banner_a", "cr_banner_b"}
    assert listed.data["creatives"][0]["assignments"]["assignment_count"] == 1
    assert {
        a["creative_id"] for a in buys.data["media_buys"][0]["packages"][0]["creative_assignments"]
    } == {"cr_banner_a", "cr_banner_b"}
    orders, creatives = _adserver(live.data_dir, "demo")
    [order] = [o for o in orders.values() if o.spec.media_buy_id == buy.data["media_buy_id"]]
    [line] = order.lines.values()
    assert len(line.creatives) == 2  # both approved creatives reached the ad server
    assert {s.creative_id for s in creatives.values()} >= {"cr_banner_a", "cr_banner_b"}


async def test_invalid_creatives_fail_alone_naming_the_field(live: LiveServer) -> None:
    bad_size = display("cr_bad_size", 300, 250)
    bad_size["assets"]["banner_image"]["height"] = 600
    bad_url = display("cr_bad_url")
    bad_url["assets"]["banner_image"]["url"] = "ftp://cdn.acme.example/x.png"
    no_click = display("cr_no_click")
    del no_click["assets"]["clickthrough_url"]
    wrong_type = display("cr_wrong_type")
    wrong_type["assets"]["banner_image"]["url"] = "https://cdn.acme.example/x.mp4"
    unknown_format = {**display("cr_unknown"), "format_id": {"agent_url": "x", "id": "nope"}}
    long_spot = video("cr_long", seconds=45)
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        result = await call(
            c,
            "sync_creatives",
            sync_args(
                [
                    bad_size,
                    bad_url,
                    no_click,
                    wrong_type,
                    unknown_format,
                    long_spot,
                    display("cr_fine"),
                ],
                validation_mode="lenient",
            ),
        )
        # The same sync, strict (AdCP's default): all six failures, and nothing stored.
        strict = await call(
            c,
            "sync_creatives",
            sync_args(
                [bad_size, bad_url, no_click, wrong_type, unknown_format, long_spot]
                + [display("cr_strict_fine")]
            ),
        )
        listed = await call(c, "list_creatives", {"filters": {"creative_ids": ["cr_strict_fine"]}})
    assert not result.is_error
    assert_valid("sync_creatives", result.data)
    by_id = {i["creative_id"]: i for i in result.data["creatives"]}
    expect = {
        "cr_bad_size": ("CREATIVE_REJECTED", "creatives[0].assets.banner_image.height"),
        "cr_bad_url": ("VALIDATION_ERROR", "creatives[1].assets.banner_image.url"),
        "cr_no_click": ("VALIDATION_ERROR", "creatives[2].assets"),
        "cr_wrong_type": ("CREATIVE_REJECTED", "creatives[3].assets.banner_image.url"),
        "cr_unknown": ("CREATIVE_REJECTED", "creatives[4].format_id"),
        "cr_long": ("CREATIVE_REJECTED", "creatives[5].assets.video_file.duration_ms"),
    }
    for cid, (code, field) in expect.items():
        assert by_id[cid]["action"] == "failed"
        assert "status" not in by_id[cid]
        assert by_id[cid]["errors"][0]["code"] == code, by_id[cid]
        assert by_id[cid]["errors"][0]["field"] == field
    assert by_id["cr_fine"]["action"] == "created"
    assert strict.is_error
    assert_valid("sync_creatives", strict.data)
    assert [(e["code"], e["field"]) for e in strict.data["errors"]] == list(expect.values())
    assert listed.data["creatives"] == []  # the valid one was not stored either


async def test_a_strict_sync_with_a_bad_assignment_stores_nothing(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        buy = await call(c, "create_media_buy", non_guaranteed())
        pkg = buy.data["packages"][0]["package_id"]
        assignments = [
            {"creative_id": "cr_strict_a", "package_id": pkg},
            {"creative_id": "cr_strict_a", "package_id": "pkg_not_mine"},
        ]
        strict = await call(c, "sync_creatives", sync_args([display("cr_strict_a")], assignments))
        listed = await call(c, "list_creatives", {"filters": {"creative_ids": ["cr_strict_a"]}})
        lenient = await call(
            c,
            "sync_creatives",
            sync_args([display("cr_strict_a")], assignments, validation_mode="lenient"),
        )
        scoped = await call(
            c,
            "sync_creatives",
            sync_args(
                [display("cr_scope_in"), display("cr_scope_out")], creative_ids=["cr_scope_in"]
            ),
        )
        out = await call(c, "list_creatives", {"filters": {"creative_ids": ["cr_scope_out"]}})
    assert strict.is_error
    assert [(e["code"], e["field"]) for e in strict.data["errors"]] == [
        ("VALIDATION_ERROR", "assignments[1]")
    ]
    assert "pkg_not_mine" in strict.data["errors"][0]["message"]
    assert listed.data["creatives"] == []
    [item] = lenient.data["creatives"]
    assert item["action"] == "created" and item["assigned_to"] == [pkg]
    assert list(item["assignment_errors"]) == ["pkg_not_mine"]
    assert [i["creative_id"] for i in scoped.data["creatives"]] == ["cr_scope_in"]
    assert out.data["creatives"] == []


async def test_assignment_rules_and_buy_time_assignment(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        await call(c, "sync_creatives", sync_args([display("cr_mrec"), video("cr_spot")]))
        buy = await call(
            c,
            "create_media_buy",
            non_guaranteed(budget=2000, creative_assignments=[{"creative_id": "cr_mrec"}]),
        )
        pkg = buy.data["packages"][0]["package_id"]
        wrong_format = await call(
            c,
            "sync_creatives",
            sync_args(
                [video("cr_spot")],
                [{"creative_id": "cr_spot", "package_id": pkg}],
                validation_mode="lenient",
            ),
        )
        ghost = await call(
            c,
            "create_media_buy",
            non_guaranteed(budget=2000, creative_assignments=[{"creative_id": "cr_ghost"}]),
        )
        drop = await call(
            c,
            "update_media_buy",
            {
                "media_buy_id": buy.data["media_buy_id"],
                "packages": [{"package_id": pkg, "creative_assignments": []}],
            },
        )
        status = await call(c, "get_creative_status", {"media_buy_id": buy.data["media_buy_id"]})
    assert buy.data["packages"][0]["creative_assignments"] == [{"creative_id": "cr_mrec"}]
    assert wrong_format.data["creatives"][0]["assignment_errors"][pkg].startswith(
        f"Package '{pkg}' accepts"
    )
    assert ghost.error_codes == ["CREATIVE_NOT_FOUND"]
    assert ghost.error["field"] == "packages[0].creative_assignments"
    assert drop.error_codes == ["UNSUPPORTED_FEATURE"]  # it is already serving
    assert status.data["creatives"] == [
        {
            "creative_id": "cr_mrec",
            "name": "Banner cr_mrec",
            "format": "display_300x250",
            "creative_status": "approved",
            "rejection_reason": None,
            "delivering": True,
        }
    ]


async def test_upload_creative_alias_assigns_matching_packages(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        buy = await call(c, "create_media_buy", non_guaranteed(budget=2000))
        uploaded = await call(
            c,
            "upload_creative",
            {
                "media_buy_id": buy.data["media_buy_id"],
                "creative_url": "https://cdn.acme.example/leader.png",
                "format": "display_728x90",
                "metadata": {
                    "name": "Leaderboard",
                    "width": 728,
                    "height": 90,
                    "click_url": "https://acme.example",
                },
            },
        )
        missing_size = await call(
            c,
            "upload_creative",
            {
                "media_buy_id": buy.data["media_buy_id"],
                "creative_url": "https://cdn.acme.example/x.png",
                "format": "display_300x250",
            },
        )
    assert uploaded.data["action"] == "created"
    assert uploaded.data["assigned_to"] == [buy.data["packages"][0]["package_id"]]
    assert missing_size.error_codes == ["VALIDATION_ERROR"]
    assert missing_size.error["field"] == "creatives[0].assets.image_file.width"


async def test_manual_review_holds_creatives_until_an_admin_approves(tmp_path: Path) -> None:
    async with admin_api(tmp_path) as api:
        tid, token = await careful_publisher(api)
        buy = await api.mcp_result("create_media_buy", non_guaranteed(budget=2000), token)
        pkg = buy["packages"][0]["package_id"]
        synced = await api.mcp_result(
            "sync_creatives",
            sync_args(
                [display("cr_a"), display("cr_b")],
                [
                    {"creative_id": "cr_a", "package_id": pkg},
                    {"creative_id": "cr_b", "package_id": pkg},
                ],
            ),
            token,
        )
        queue = (await api.request("GET", f"/creatives/review?tenant_id={tid}")).json()
        ids = {c["creative_id"]: c["id"] for c in queue["creatives"]}
        before = _adserver(tmp_path, tid)[0]
        approved = await api.request("POST", f"/creatives/{ids['cr_a']}/approve")
        no_reason = await api.request("POST", f"/creatives/{ids['cr_b']}/reject", json={})
        rejected = await api.request(
            "POST",
            f"/creatives/{ids['cr_b']}/reject",
            json={"reason": "Health claim not substantiated"},
        )
        listed = await api.mcp_result("list_creatives", {}, token)
        async with api.state.db.session() as session:
            events = (
                await session.exec(
                    select(OutboxEvent)
                    .where(OutboxEvent.tenant_id == tid, OutboxEvent.event_type.like("creative.%"))
                    .order_by(OutboxEvent.created_at)
                )
            ).all()
    assert {i["status"] for i in synced["creatives"]} == {"pending_review"}
    # Each decision is an event, written with the decision itself.
    assert [(e.event_type, e.payload["creative_id"]) for e in events] == [
        ("creative.approved", "cr_a"),
        ("creative.rejected", "cr_b"),
    ]
    assert events[1].payload["reason"] == "Health claim not substantiated"
    [order] = before.values()
    assert all(not line.creatives for line in order.lines.values())  # nothing pushed yet
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert no_reason.status_code == 422
    assert rejected.json()["rejection_reason"] == "Health claim not substantiated"
    statuses = {x["creative_id"]: x["status"] for x in listed["creatives"]}
    assert statuses == {"cr_a": "approved", "cr_b": "rejected"}
    [order] = _adserver(tmp_path, tid)[0].values()
    [line] = order.lines.values()
    assert len(line.creatives) == 1  # only the approved creative reached the ad server


async def test_a_strict_sync_names_a_failed_creative_once_not_its_assignments(
    live: LiveServer,
) -> None:
    bad = display("cr_strict_bad")
    bad["assets"]["banner_image"]["height"] = 600
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        buy = await call(c, "create_media_buy", non_guaranteed())
        pkg = buy.data["packages"][0]["package_id"]
        strict = await call(
            c,
            "sync_creatives",
            sync_args([bad], [{"creative_id": "cr_strict_bad", "package_id": pkg}]),
        )
    assert strict.is_error
    assert [e["field"] for e in strict.data["errors"]] == [
        "creatives[0].assets.banner_image.height"
    ]


PROVENANCE = {
    "digital_source_type": "trained_algorithmic_media",
    "ai_tool": {"name": "Image model", "provider": "Example AI"},
    "human_oversight": "edited",
    "disclosure": {"required": True},
}


async def test_industry_identifiers_and_provenance_are_kept_and_shown(tmp_path: Path) -> None:
    """What the buyer declares about a creative (Ad-ID/ISCI; how it was made) reaches
    the publisher's reviewer and comes back from list_creatives; changing it is an
    update, re-sending it is not, and a creative stored without it is unchanged by a
    sync that still carries none."""
    declared = {
        **display("cr_declared"),
        "industry_identifiers": [{"type": "ad_id", "value": "ACME0001000H"}],
        "provenance": PROVENANCE,
    }
    plain = display("cr_plain")
    async with admin_api(tmp_path) as api:
        tid, token = await careful_publisher(api)
        first = await api.mcp_result("sync_creatives", sync_args([declared, plain]), token)
        queue = (await api.request("GET", f"/creatives/review?tenant_id={tid}")).json()
        again = await api.mcp_result("sync_creatives", sync_args([declared, plain]), token)
        relabelled = {**declared, "industry_identifiers": [{"type": "isci", "value": "ACME1234"}]}
        changed = await api.mcp_result("sync_creatives", sync_args([relabelled]), token)
        listed = await api.mcp_result("list_creatives", {}, token)
        bad = await api.mcp_result(
            "sync_creatives",
            sync_args([{**plain, "industry_identifiers": [{"type": "barcode", "value": "1"}]}]),
            token,
        )
    assert [i["action"] for i in first["creatives"]] == ["created", "created"]
    reviewed = {c["creative_id"]: c for c in queue["creatives"]}
    assert reviewed["cr_declared"]["provenance"] == PROVENANCE
    assert reviewed["cr_declared"]["industry_identifiers"] == declared["industry_identifiers"]
    assert reviewed["cr_plain"]["provenance"] is None
    assert [i["action"] for i in again["creatives"]] == ["unchanged", "unchanged"]
    [item] = changed["creatives"]
    assert item["action"] == "updated" and item["changes"] == ["industry_identifiers"]
    assert_valid("list_creatives", listed)
    shown = {c["creative_id"]: c for c in listed["creatives"]}
    assert shown["cr_declared"]["industry_identifiers"] == [{"type": "isci", "value": "ACME1234"}]
    assert shown["cr_declared"]["provenance"] == PROVENANCE
    assert "provenance" not in shown["cr_plain"]
    assert bad["status"] == "failed"
    assert bad["errors"][0]["field"].startswith("creatives.0.industry_identifiers.0.type")


async def test_an_update_replaces_a_packages_assignments(tmp_path: Path) -> None:
    """update_media_buy's creative_assignments replace the package's: a creative not yet
    on the ad server can be dropped, new ones are added, and the package, the buy and
    the ad server agree afterwards."""
    async with admin_api(tmp_path) as api:
        tid, token = await careful_publisher(api)
        creatives = [display("cr_one"), display("cr_two"), display("cr_three")]
        await api.mcp_result("sync_creatives", sync_args(creatives), token)
        buy = await api.mcp_result(
            "create_media_buy",
            non_guaranteed(budget=2000, creative_assignments=[{"creative_id": "cr_one"}]),
            token,
        )
        mb, pkg = buy["media_buy_id"], buy["packages"][0]["package_id"]

        async def assign(*ids: str) -> dict:
            wanted = [{"creative_id": i} for i in ids]
            return await api.mcp_result(
                "update_media_buy",
                {
                    "media_buy_id": mb,
                    "packages": [{"package_id": pkg, "creative_assignments": wanted}],
                },
                token,
            )

        swapped = await assign("cr_two", "cr_three")  # cr_one awaits review: not served yet
        queue = (await api.request("GET", f"/creatives/review?tenant_id={tid}")).json()
        two = next(c["id"] for c in queue["creatives"] if c["creative_id"] == "cr_two")
        await api.request("POST", f"/creatives/{two}/approve")  # cr_two reaches the ad server
        dropped = await assign("cr_three")
        listed = await api.mcp_result("get_media_buys", {"media_buy_ids": [mb]}, token)
        library = await api.mcp_result("list_creatives", {}, token)
    assert swapped["status"] == "completed", swapped
    assert dropped["status"] == "failed" and dropped["errors"][0]["code"] == "UNSUPPORTED_FEATURE"
    [package] = listed["media_buys"][0]["packages"]
    assert {a["creative_id"] for a in package["creative_assignments"]} == {"cr_two", "cr_three"}
    counts = {c["creative_id"]: c["assignments"]["assignment_count"] for c in library["creatives"]}
    assert counts == {"cr_one": 0, "cr_two": 1, "cr_three": 1}
    [order] = _adserver(tmp_path, tid)[0].values()
    [line] = order.lines.values()
    assert len(line.creatives) == 1  # cr_two: the one approved
