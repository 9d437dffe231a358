"""sync_creatives delete_missing: a full-library sync archives the account's creatives
it leaves out — not one still serving in a running buy (kept, with a warning), and
nobody else's; an archived creative synced again is back."""

from __future__ import annotations

from typing import Any

from tests.creative_helpers import display, sync_args
from tests.media_helpers import non_guaranteed, own_tenant
from tests.support import LiveServer, assert_valid, call, mcp_client

MINE = "adcp_test_archivist_token_000000000001"
THEIRS = "adcp_test_archivist_token_000000000002"


def _by_id(result: Any) -> dict[str, dict[str, Any]]:
    return {c["creative_id"]: c for c in result.data["creatives"]}


async def test_a_full_sync_archives_what_it_leaves_out(live: LiveServer) -> None:
    # A publisher of its own: a full sync must not archive other tests' creatives.
    await own_tenant(live.settings, "archivist", MINE, [], None, THEIRS)
    async with (
        mcp_client(live.mcp_url, MINE) as c,
        mcp_client(live.mcp_url, THEIRS) as other,
    ):
        await call(c, "sync_creatives", sync_args([display(f"arc_{n}") for n in (1, 2, 3)]))
        await call(other, "sync_creatives", sync_args([display("arc_2")]))
        booked = await call(
            c,
            "create_media_buy",
            non_guaranteed(budget=2000, creative_assignments=[{"creative_id": "arc_1"}]),
        )
        package = booked.data["packages"][0]["package_id"]
        both = await call(
            c,
            "sync_creatives",
            sync_args([display("arc_3")], creative_ids=["arc_3"], delete_missing=True),
        )
        rehearsal = await call(
            c, "sync_creatives", sync_args([display("arc_3")], delete_missing=True, dry_run=True)
        )
        after_rehearsal = await call(c, "list_creatives", {"filters": {"creative_ids": ["arc_2"]}})
        full = await call(c, "sync_creatives", sync_args([display("arc_3")], delete_missing=True))
        listed = await call(c, "list_creatives", {})
        theirs = await call(other, "list_creatives", {})
        assign = await call(
            c,
            "update_media_buy",
            {
                "media_buy_id": booked.data["media_buy_id"],
                "packages": [{"package_id": package, "creative_ids": ["arc_1", "arc_2"]}],
            },
        )
        back = await call(c, "sync_creatives", sync_args([display("arc_2")]))
    assert both.error_codes == ["INVALID_REQUEST"] and both.error["field"] == "delete_missing"
    assert _by_id(rehearsal)["arc_2"]["action"] == "deleted"
    assert _by_id(after_rehearsal)["arc_2"]["status"] == "approved"  # a dry run wrote nothing
    assert_valid("sync_creatives", full.data)
    items = _by_id(full)
    assert items["arc_2"]["action"] == "deleted" and "status" not in items["arc_2"]
    assert items["arc_3"]["action"] == "unchanged"
    kept = items["arc_1"]  # serving in the buy: the ad server holds it
    assert (kept["action"], kept["status"]) == ("unchanged", "approved")
    assert package in kept["warnings"][0]
    statuses = {cid: c["status"] for cid, c in _by_id(listed).items()}
    assert statuses == {"arc_1": "approved", "arc_2": "archived", "arc_3": "approved"}
    assert _by_id(theirs)["arc_2"]["status"] == "approved"  # another buyer's library
    assert assign.is_error  # an archived creative is not assigned
    assert _by_id(back)["arc_2"]["action"] == "updated"
    assert _by_id(back)["arc_2"]["status"] == "approved"
