"""list_creatives filters and pages in the database, and a library's size does not set
what a call costs: each filter returns exactly the creatives it names (case-insensitive
names in any script, tags, formats, statuses, assignments to packages and buys), pages
walk the filtered library once, and sync_creatives / list_creatives load only the
creatives they name or return — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from adcp_agent_tools.creatives import CreativeSort
from adcp_agent_tools.params import dump
from adcp_agent_tools.results import _encode_cursor, fingerprint
from sqlalchemy import event, text

from adcp_agent.db.engine import create_database
from adcp_agent.db.models_creatives import Creative
from adcp_agent.services import creative_listing, identity, tenants
from adcp_agent.services import creatives as library
from adcp_agent.state import AppState
from tests.creative_helpers import display, sync_args, video
from tests.databases import live_servers
from tests.media_helpers import non_guaranteed
from tests.support import DEMO_TOKEN, LiveServer, assert_valid, call, mcp_client

LISTER = "adcp_test_creative_lister_token_012345678"
DISPLAY = "display_300x250"


async def _setup(state: AppState) -> None:
    await tenants.create_principal(
        state.db, tenant_id="demo", name="Lister", token=LISTER, principal_id="lister"
    )


listing, listing_sqlite, listing_postgres = live_servers("listing", _setup)


def _named(creative_id: str, name: str, tags: list[str] | None = None, **size: int) -> dict:
    out = {**display(creative_id, **size), "name": name}
    if tags:
        out["tags"] = tags
    return out


# The lister's library: (creative, packages of buy A / buy B it is assigned to).
LIBRARY: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    (_named("cr_spring_1", "Spring Banner One", ["spring", "sale"]), ("A",)),
    (_named("cr_spring_2", "Spring banner two", ["spring"]), ("A", "B")),
    (_named("cr_summer", "Summer Leaderboard", ["summer"], width=728, height=90), ("B",)),
    (_named("cr_umlaut", "ÄRGER Banner", ["sale"]), ()),
    (_named("cr_plain", "Plain rectangle"), ()),
    (video("cr_spot_a"), ("V",)),
    (video("cr_spot_b"), ()),
    (_named("cr_rejected", "Spring Banner Rejected", ["spring"]), ()),
]


@pytest.fixture
async def library_ids(listing: LiveServer) -> AsyncIterator[dict[str, str]]:
    """The lister's library on this module's server, made once: the ids of buy A (a
    display buy), buy B (display) and buy V (video), and their packages."""
    made = getattr(listing, "_creative_library", None)
    if made is None:
        made = await _build(listing)
        listing._creative_library = made  # type: ignore[attr-defined]
    yield made


async def _build(server: LiveServer) -> dict[str, str]:
    ids: dict[str, str] = {}
    async with mcp_client(server.mcp_url, LISTER) as c:
        for name, args in (
            ("A", non_guaranteed()),
            ("B", non_guaranteed()),
            (
                "V",
                non_guaranteed(
                    product_id="ctv_entertainment_ron",
                    pricing_option_id="ctv_ron_auction",
                    bid_price=20.0,
                ),
            ),
        ):
            buy = await call(c, "create_media_buy", args)
            assert not buy.is_error, buy.data
            ids[name] = buy.data["media_buy_id"]
            ids[f"pkg_{name}"] = buy.data["packages"][0]["package_id"]
        # One creative a call, so each has its own updated_at (newest last).
        for creative, buys in LIBRARY:
            assignments = [
                {"creative_id": creative["creative_id"], "package_id": ids[f"pkg_{b}"]}
                for b in buys
            ]
            synced = await call(c, "sync_creatives", sync_args([creative], assignments))
            assert not synced.is_error, synced.data
            assert not synced.data["creatives"][0].get("assignment_errors"), synced.data
    db = create_database(server.settings.resolved_database_url())
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                text("UPDATE creatives SET status = 'rejected' WHERE creative_id = 'cr_rejected'")
            )
    finally:
        await db.dispose()
    return ids


async def _list(server: LiveServer, filters: dict[str, Any] | None = None, **page: Any) -> Any:
    args: dict[str, Any] = {"pagination": {"max_results": 100, **page}}
    if filters is not None:
        args["filters"] = filters
    async with mcp_client(server.mcp_url, LISTER) as c:
        return await call(c, "list_creatives", args)


def _ids(result: Any) -> list[str]:
    return [c["creative_id"] for c in result.data["creatives"]]


# filter → the creatives it must return (of LIBRARY; "A"/"B"/"V" are the buys).
CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("rejected", {"statuses": ["rejected"]}, {"cr_rejected"}),
    (
        "approved",
        {"statuses": ["approved"]},
        {c["creative_id"] for c, _ in LIBRARY} - {"cr_rejected"},
    ),
    ("by id", {"creative_ids": ["cr_plain", "cr_spot_b", "cr_nope"]}, {"cr_plain", "cr_spot_b"}),
    ("buy A", {"media_buy_ids": ["A"]}, {"cr_spring_1", "cr_spring_2"}),
    ("buys A+V", {"media_buy_ids": ["A", "V"]}, {"cr_spring_1", "cr_spring_2", "cr_spot_a"}),
    ("package B", {"assigned_to_packages": ["pkg_B"]}, {"cr_spring_2", "cr_summer"}),
    (
        "unassigned",
        {"unassigned": True},
        {"cr_umlaut", "cr_plain", "cr_spot_b", "cr_rejected"},
    ),
    (
        "assigned",
        {"unassigned": False},
        {"cr_spring_1", "cr_spring_2", "cr_summer", "cr_spot_a"},
    ),
    (
        "name, any case",
        {"name_contains": "BANNER"},
        {"cr_spring_1", "cr_spring_2", "cr_umlaut", "cr_rejected"},
    ),  # fmt: skip
    ("name, not ASCII", {"name_contains": "ärger"}, {"cr_umlaut"}),
    ("tags", {"tags_any": ["sale", "summer"]}, {"cr_spring_1", "cr_umlaut", "cr_summer"}),
    (
        "format",
        {"format_ids": [{"agent_url": "http://x/mcp", "id": "video_1920x1080"}]},
        {"cr_spot_a", "cr_spot_b"},
    ),
    (
        "combined",
        {"statuses": ["approved"], "name_contains": "spring", "media_buy_ids": ["A"]},
        {"cr_spring_1", "cr_spring_2"},
    ),
    ("nothing", {"tags_any": ["winter"]}, set()),
]


def _resolve(filters: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    out = dict(filters)
    if "media_buy_ids" in out:
        out["media_buy_ids"] = [ids[b] for b in out["media_buy_ids"]]
    if "assigned_to_packages" in out:
        out["assigned_to_packages"] = [ids[p] for p in out["assigned_to_packages"]]
    return out


@pytest.mark.parametrize(("label", "filters", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_each_filter_returns_exactly_its_creatives_newest_change_first(
    listing: LiveServer,
    library_ids: dict[str, str],
    label: str,
    filters: dict[str, Any],
    expected: set[str],
) -> None:
    everything = await _list(listing)
    result = await _list(listing, _resolve(filters, library_ids))
    assert not result.is_error, result.data
    assert_valid("list_creatives", result.data)
    listed = _ids(result)
    assert set(listed) == expected, label
    # The order is the whole library's (newest change first), less what is filtered out.
    assert listed == [c for c in _ids(everything) if c in expected]
    assert result.data["query_summary"]["total_matching"] == len(expected)
    assert result.data["pagination"] == {"has_more": False, "total_count": len(expected)}


async def test_the_library_is_listed_newest_first_with_its_assignments(
    listing: LiveServer, library_ids: dict[str, str]
) -> None:
    result = await _list(listing)
    synced_order = [c["creative_id"] for c, _ in LIBRARY]
    assert _ids(result) == list(reversed(synced_order))  # one sync each, in this order
    links = {
        c["creative_id"]: {a["package_id"] for a in c["assignments"]["assigned_packages"]}
        for c in result.data["creatives"]
    }
    assert links == {
        c["creative_id"]: {library_ids[f"pkg_{b}"] for b in buys} for c, buys in LIBRARY
    }


async def test_pages_walk_the_filtered_library_once(
    listing: LiveServer, library_ids: dict[str, str]
) -> None:
    spring_or_sale = {"tags_any": ["spring", "sale"]}
    approved = {"statuses": ["approved"]}
    for filters in (approved, spring_or_sale):  # paged in SQL, and matched in Python
        whole = _ids(await _list(listing, filters))
        seen: list[str] = []
        cursor = None
        while True:
            page = await _list(
                listing, filters, max_results=3, **({"cursor": cursor} if cursor else {})
            )
            assert not page.is_error, page.data
            assert page.data["pagination"]["total_count"] == len(whole)
            assert page.data["query_summary"]["returned"] == len(_ids(page)) <= 3
            seen += _ids(page)
            if not page.data["pagination"]["has_more"]:
                break
            cursor = page.data["pagination"]["cursor"]
        assert seen == whole and len(whole) >= 4
    first = await _list(listing, approved, max_results=3)
    other = await _list(listing, spring_or_sale, cursor=first.data["pagination"]["cursor"])
    assert other.is_error and other.error["field"] == "pagination.cursor"
    too_many = await _list(listing, approved, max_results=101)
    assert too_many.is_error and too_many.error_codes == ["VALIDATION_ERROR"]


@pytest.mark.parametrize("filters", [{"statuses": ["approved"]}, {"name_contains": "a"}])
async def test_a_page_past_the_end_is_empty_and_still_counts(
    listing: LiveServer, library_ids: dict[str, str], filters: dict[str, Any]
) -> None:
    whole = await _list(listing, filters)
    query = fingerprint("creatives", "demo", "lister", filters, dump(CreativeSort()))
    beyond = await _list(listing, filters, cursor=_encode_cursor(50, query))
    assert not beyond.is_error, beyond.data
    assert _ids(beyond) == []
    total = whole.data["query_summary"]["total_matching"]
    assert total > 0 and beyond.data["pagination"] == {"has_more": False, "total_count": total}


async def test_oversized_filter_lists_are_refused_naming_the_field(listing: LiveServer) -> None:
    async with mcp_client(listing.mcp_url, LISTER) as c:
        listed = await call(c, "list_creatives", {"filters": {"tags_any": ["t"] * 101}})
        synced = await call(
            c,
            "sync_creatives",
            sync_args(
                [display("cr_many")],
                [{"creative_id": "cr_many", "package_id": f"p{i}"} for i in range(1001)],
            ),
        )
    assert listed.is_error and "tags_any" in listed.error.get("field", listed.error["message"])
    assert synced.is_error and "assignments" in synced.error.get("field", synced.error["message"])


# --- what a call loads does not grow with the library -----------------------------------


@pytest.fixture
def loaded_creatives() -> Iterator[list[str]]:
    """Every Creative row the ORM turns into an object while the test runs."""
    seen: list[str] = []

    def on_load(target: Creative, context: Any) -> None:
        seen.append(target.creative_id)

    event.listen(Creative, "load", on_load)
    yield seen
    event.remove(Creative, "load", on_load)


async def test_sync_and_list_load_only_what_they_name_or_return(
    prepared_state: AppState, loaded_creatives: list[str], tmp_path: Path
) -> None:
    state = prepared_state
    caller = await identity.authenticate(state.db, DEMO_TOKEN)
    for batch in range(3):
        creatives = [
            library.CreativeIn(f"cr_{batch}_{i}", f"Banner {batch} {i}", DISPLAY, _assets())
            for i in range(40)
        ]
        items = await library.sync(state, caller, creatives)
        assert {i.action for i in items} == {"created"}
    loaded_creatives.clear()
    one = library.CreativeIn("cr_0_7", "Banner renamed", DISPLAY, _assets())
    [item] = await library.sync(state, caller, [one])
    assert item.action == "updated"
    assert set(loaded_creatives) == {"cr_0_7"}  # not the other 119

    loaded_creatives.clear()
    page = await creative_listing.list_creatives(state, caller, offset=10, limit=5)
    assert page.total == 120 and len(page.rows) == 5
    assert len(loaded_creatives) == 5
    loaded_creatives.clear()
    by_name = creative_listing.CreativeQuery(name_contains="banner 2")
    named = await creative_listing.list_creatives(state, caller, by_name, limit=5)
    assert named.total == 40 and len(named.rows) == 5
    assert all(c.creative_id.startswith("cr_2_") for c, _ in named.rows)
    assert len(loaded_creatives) == 5  # the others were matched on (id, name) alone


def _assets() -> dict[str, Any]:
    return display("x")["assets"]


SORT_KEYS = {
    "created_date": lambda c: c["created_date"],
    "updated_date": lambda c: c["updated_date"],
    "name": lambda c: c["name"],
    "status": lambda c: c["status"],
    "assignment_count": lambda c: c["assignments"]["assignment_count"],
}


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("field", list(SORT_KEYS))
async def test_every_sort_field_orders_the_library(
    listing: LiveServer, library_ids: dict[str, str], field: str, direction: str
) -> None:
    # Names in ASCII only: beyond it the order is the database's collation.
    ascii_only = {
        "creative_ids": [c["creative_id"] for c, _ in LIBRARY if c["creative_id"] != "cr_umlaut"]
    }  # noqa: E501
    args = {"filters": ascii_only, "sort": {"field": field, "direction": direction}}
    args["pagination"] = {"max_results": 100}
    async with mcp_client(listing.mcp_url, LISTER) as c:
        result = await call(c, "list_creatives", args)
    assert not result.is_error, result.data
    rows = sorted(result.data["creatives"], key=lambda c: c["creative_id"])
    rows.sort(key=SORT_KEYS[field], reverse=direction == "desc")  # then creative_id
    assert _ids(result) == [c["creative_id"] for c in rows]
    if field == "assignment_count":
        counts = [SORT_KEYS[field](c) for c in result.data["creatives"]]
        assert len(set(counts)) == 3  # 0, 1 and 2: the order is tested, not just ties


async def test_time_ranges_tags_and_accounts_filter(
    listing: LiveServer, library_ids: dict[str, str]
) -> None:
    everything = (await _list(listing)).data["creatives"]
    oldest_first = sorted(everything, key=lambda c: c["created_date"])
    cut = oldest_first[3]["created_date"]
    newer = await _list(listing, {"created_after": cut})
    older = await _list(listing, {"created_before": cut})
    assert set(_ids(newer)) == {c["creative_id"] for c in oldest_first[3:]}
    assert set(_ids(older)) == {c["creative_id"] for c in oldest_first[:3]}
    cut = max(c["updated_date"] for c in everything)
    assert set(_ids(await _list(listing, {"updated_after": cut}))) == {
        c["creative_id"] for c in everything if c["updated_date"] == cut
    }
    assert _ids(await _list(listing, {"updated_before": "2000-01-01T00:00:00Z"})) == []
    both = await _list(listing, {"tags": ["spring", "sale"]})
    assert _ids(both) == ["cr_spring_1"]  # all the tags, not any of them
    async with mcp_client(listing.mcp_url, LISTER) as c:
        [account] = (await call(c, "list_accounts", {})).data["accounts"]
    mine = await _list(listing, {"accounts": [{"account_id": account["account_id"]}]})
    assert len(_ids(mine)) == len(LIBRARY)
    foreign = await _list(listing, {"accounts": [{"account_id": "acct_not_mine"}]})
    assert foreign.is_error and foreign.error_codes[0].startswith("ACCOUNT")
    bad_time = await _list(listing, {"created_after": "last week"})
    assert bad_time.is_error and bad_time.error["field"] == "filters.created_after"


async def test_include_flags_and_fields_shape_each_creative(
    listing: LiveServer, library_ids: dict[str, str]
) -> None:
    async with mcp_client(listing.mcp_url, LISTER) as c:
        full = await call(c, "list_creatives", {"include_snapshot": True})
        bare = await call(c, "list_creatives", {"include_assignments": False})
        light = await call(c, "list_creatives", {"fields": ["format_id", "tags"]})
        unknown = await call(c, "list_creatives", {"fields": ["creative_id", "colour"]})
    for result in (full, bare, light):
        assert not result.is_error, result.data
        assert_valid("list_creatives", result.data)
        assert _ids(result) == _ids(full)
    assert all("assignments" in x for x in full.data["creatives"])
    # Delivery is per package here: AdCP's way of saying there is no creative snapshot.
    assert {x["snapshot_unavailable_reason"] for x in full.data["creatives"]} == {
        "SNAPSHOT_UNSUPPORTED"
    }
    assert not any("assignments" in x for x in bare.data["creatives"])
    required = {"creative_id", "name", "status", "created_date", "updated_date"}
    for x in light.data["creatives"]:
        assert required | {"format_id"} <= set(x) <= required | {"format_id", "tags"}
    assert any("tags" in x for x in light.data["creatives"])
    assert unknown.error_codes == ["VALIDATION_ERROR"] and unknown.error["field"] == "fields.1"
