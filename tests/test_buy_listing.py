"""Listing buys in the database: get_media_buys filters by status and pages in SQL, and
delivery reports over many buys read them in chunks. The SQL status filter must agree
with the status buyers see (``buy_state.wire_status``) for every state and flight,
boundaries included, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from adcp_agent_tools.media_wire import iso
from sqlmodel import col, select, update

from adcp_agent.config import Settings
from adcp_agent.db import types as db_types
from adcp_agent.db.models_delivery import DeliveryHour
from adcp_agent.db.models_media import MediaBuy
from adcp_agent.server import prepare
from adcp_agent.services import buy_state, delivery_reports, delivery_wire, identity, media_reads
from adcp_agent.state import AppState
from tests.databases import Backend, database_settings
from tests.media_helpers import non_guaranteed
from tests.support import DEMO_TOKEN, LiveServer, call, mcp_client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from seed_buys import seed  # noqa: E402

STATUSES = ("pending_start", "active", "paused", "completed", "rejected", "canceled")


async def _seeded_state(tmp_path: Path, backend: Backend, count: int) -> AppState:
    settings = Settings(
        data_dir=tmp_path, demo_token=DEMO_TOKEN, **database_settings(tmp_path, backend)
    )
    state = AppState.from_settings(settings)
    await prepare(state)
    await seed(settings.resolved_database_url(), count)
    return state


async def test_sql_status_filter_agrees_with_the_wire_status(
    tmp_path: Path, backend: Backend
) -> None:
    state = await _seeded_state(tmp_path, backend, 400)
    try:
        now = state.clock.now().replace(microsecond=0)
        async with state.db.transaction() as session:
            # Flights that start or end exactly now, and a rejected buy.
            for buy_id, values in (
                ("mb_seed00000001", {"state": "live", "start_time": now}),
                ("mb_seed00000002", {"state": "live", "end_time": now}),
                ("mb_seed00000003", {"state": "paused", "end_time": now}),
                ("mb_seed00000004", {"state": "rejected"}),
                ("mb_seed00000005", {"state": "paused", "end_time": now + timedelta(days=3)}),
            ):
                stmt = update(MediaBuy).where(col(MediaBuy.media_buy_id) == buy_id)
                await session.exec(stmt.values(**values))  # type: ignore[call-overload]
        async with state.db.session() as session:
            buys = list((await session.exec(select(MediaBuy))).all())
        caller = await identity.authenticate(state.db, DEMO_TOKEN)
        expected_by_status = {
            s: {b.media_buy_id for b in buys if buy_state.wire_status(b, now) == s}
            for s in STATUSES
        }
        # Every status occurs, so the comparison below means something.
        assert all(expected_by_status[s] for s in STATUSES), {
            s: len(v) for s, v in expected_by_status.items()
        }
        for status in STATUSES:
            async with state.db.session() as session:
                got = set(
                    (
                        await session.exec(
                            select(MediaBuy.media_buy_id).where(
                                buy_state.status_clause([status], now)
                            )
                        )
                    ).all()
                )
            assert got == expected_by_status[status], status
        listed, missing, total = await media_reads.page_buys(
            state, caller, statuses=["active", "paused"], now=now
        )
        assert not missing
        assert {v.buy.media_buy_id for v in listed} == (
            expected_by_status["active"] | expected_by_status["paused"]
        )
        assert total == len(listed)
    finally:
        await state.db.dispose()


async def test_pages_cover_every_buy_once_newest_first(tmp_path: Path, backend: Backend) -> None:
    state = await _seeded_state(tmp_path, backend, 130)
    try:
        caller = await identity.authenticate(state.db, DEMO_TOKEN)
        now = state.clock.now()
        everything, _, total = await media_reads.page_buys(
            state, caller, statuses=["completed", "active"], now=now
        )
        pages, offset = [], 0
        while True:
            page, _, page_total = await media_reads.page_buys(
                state, caller, statuses=["completed", "active"], now=now, offset=offset, limit=17
            )
            assert page_total == total
            if not page:
                break
            pages.extend(v.buy.media_buy_id for v in page)
            offset += 17
        assert pages == [v.buy.media_buy_id for v in everything]
        assert len(set(pages)) == total > 17 * 3
        created = [v.buy.created_at for v in everything]
        assert created == sorted(created, reverse=True)
        # An id asked for that sits on a later page is not "missing"; a stranger's is.
        wanted = [pages[-1], "mb_not_mine"]
        _page, missing, _ = await media_reads.page_buys(
            state, caller, media_buy_ids=wanted, now=now, offset=0, limit=1
        )
        assert missing == ["mb_not_mine"]
    finally:
        await state.db.dispose()


async def test_delivery_report_over_more_buys_than_one_in_list(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a tiny IN-list size, a report over many buys is read in several chunks and
    still reports every buy once, with its packages."""
    state = await _seeded_state(tmp_path, backend, 40)
    try:
        async with state.db.transaction() as session:  # ended buys: nothing to simulate
            await session.exec(update(MediaBuy).values(state="canceled"))  # type: ignore[call-overload]
        caller = await identity.authenticate(state.db, DEMO_TOKEN)
        query = delivery_reports.ReportQuery(
            media_buy_ids=[], statuses=["canceled"], account=None, start_date=None, end_date=None
        )
        whole = await delivery_reports.report(state, caller, query)
        monkeypatch.setattr(db_types, "IN_CHUNK", 3)
        chunked = await delivery_reports.report(state, caller, query)
        assert len(whole.buys) == 40 and whole.warnings == []  # under the cap: all of them
        assert [b.buy.media_buy_id for b in chunked.buys] == [
            b.buy.media_buy_id for b in whole.buys
        ]
        assert [len(b.packages) for b in chunked.buys] == [len(b.packages) for b in whole.buys]
        assert all(b.packages for b in chunked.buys)
    finally:
        await state.db.dispose()


async def test_reports_naming_one_to_six_buys_cover_exactly_those(
    tmp_path: Path, backend: Backend
) -> None:
    """Lists of up to four ids run statements prebuilt for their length, longer ones an
    expanding IN (db/id_lists.py): every length reports exactly the named buys, each
    with its own package and delivery, and lists unknown ids as missing."""
    state = await _seeded_state(tmp_path, backend, 8)
    try:
        hour = state.clock.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
        async with state.db.transaction() as session:  # ended buys: nothing to simulate
            await session.exec(update(MediaBuy).values(state="canceled"))  # type: ignore[call-overload]
            for i in range(8):
                session.add(
                    DeliveryHour(
                        tenant_id="demo", media_buy_id=f"mb_seed{i:08d}",
                        package_id=f"pkg_seed{i:08d}", hour=hour, source="tracking",
                        impressions=1000 + i, spend=float(i),
                    )
                )  # fmt: skip
        caller = await identity.authenticate(state.db, DEMO_TOKEN)
        for n in range(1, 7):
            wanted = [f"mb_seed{i:08d}" for i in range(7, 7 - n, -1)][: n - 1] + ["mb_nope"]
            query = delivery_reports.ReportQuery(media_buy_ids=wanted, statuses=[])
            got = await delivery_reports.report(state, caller, query)
            assert sorted(b.buy.media_buy_id for b in got.buys) == sorted(wanted[:-1]), n
            assert got.missing == ["mb_nope"]
            for b in got.buys:
                i = int(b.buy.media_buy_id[-8:])
                [package] = b.packages
                assert package.package.package_id == f"pkg_seed{i:08d}"
                assert package.lifetime.impressions == 1000 + i
    finally:
        await state.db.dispose()


def _windows(b: Any, start: Any, end: Any, granularity: str, hourly: bool) -> list[Any]:
    """The windows served for a report without hours; for an hourly report, the
    reference: its hours added up per window."""
    if not hourly:
        return delivery_wire.windows(b, start, end, granularity)
    completions = any(delivery_wire.playable(pr) for pr in b.packages)
    out = []
    for lo, hi in delivery_wire._buckets(start, end, granularity):
        total = delivery_reports.Totals()
        for hour, t in b.hours.items():
            if lo <= hour < hi:
                total.add(t)
        out.append(
            {
                "window_start": iso(lo),
                "window_end": iso(hi),
                "totals": delivery_wire.metrics(total, completions=completions),
            }
        )
    return out


def _figures(report: delivery_reports.DeliveryReport, hourly: bool) -> dict[str, Any]:
    return {
        "period": (report.start, report.end),
        "buys": {
            b.buy.media_buy_id: (
                b.period, b.days, b.pacing_index,
                {pr.package.package_id: (pr.lifetime, pr.period, pr.days, pr.sources,
                                         pr.pacing_index, pr.delivery_status)
                 for pr in b.packages},
                {g: _windows(b, report.start, report.end, g, hourly)
                 for g in ("daily", "monthly")},
            )
            for b in report.buys
        },
    }  # fmt: skip


async def test_daily_sums_from_the_database_equal_the_hourly_rows_added_up(
    tmp_path: Path, backend: Backend
) -> None:
    """Reports without hours sum each day in SQL (~a 24th of the rows): every figure —
    lifetime, period, days, sources, pacing, daily and monthly windows — equals the one
    added up from the hourly rows, for lifetime and dated periods, with several sources,
    day rows before the flight and rows in the current (unfinished) hour."""
    state = await _seeded_state(tmp_path, backend, 6)
    rng = random.Random(3)
    now = state.clock.now()
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    try:
        async with state.db.transaction() as session:
            for i in range(6):
                start = this_hour - timedelta(days=40 - 5 * i, hours=7 * i)
                if start.hour == 0:  # flights start mid-day, whatever the hour now
                    start -= timedelta(hours=1)
                await session.exec(
                    update(MediaBuy)  # type: ignore[call-overload]
                    .where(col(MediaBuy.media_buy_id) == f"mb_seed{i:08d}")
                    .values(state="canceled" if i == 5 else "live", start_time=start,
                            end_time=this_hour + timedelta(days=3))
                )  # fmt: skip
                hours = [start + timedelta(hours=h) for h in range(0, (40 - 5 * i) * 24, 5)]
                if i % 2 == 0:  # an ad server's day row, before the flight
                    hours.append(start - timedelta(hours=start.hour + 24))
                hours.append(this_hour)  # counted in the lifetime, not in the period
                for hour in hours:
                    for source in rng.sample(["simulator", "tracking", "adapter"], 2):
                        session.add(
                            DeliveryHour(
                                tenant_id="demo", media_buy_id=f"mb_seed{i:08d}",
                                package_id=f"pkg_seed{i:08d}", hour=hour, source=source,
                                impressions=rng.randint(0, 900), clicks=rng.randint(0, 9),
                                completions=rng.randint(0, 50), spend=rng.randint(0, 80) / 4,
                            )
                        )  # fmt: skip
        caller = await identity.authenticate(state.db, DEMO_TOKEN)
        today = this_hour.date()
        ids = [f"mb_seed{i:08d}" for i in range(6)]
        periods = [
            (None, None),
            (today - timedelta(days=20), None),
            (None, today - timedelta(days=9)),
            (today - timedelta(days=33), today - timedelta(days=2)),
            (today, today),
            (today + timedelta(days=2), None),  # starts in the future: an empty period
            (today - timedelta(days=90), today - timedelta(days=80)),  # before every flight
        ]
        compared = 0
        # The buys without a row before their flight, alone: a lifetime period that
        # starts at the first flight's (mid-day) hour.
        for buys, first, last in [(ids, *p) for p in periods] + [(ids[1::2], None, None)]:
            query = delivery_reports.ReportQuery(
                media_buy_ids=buys, start_date=first, end_date=last
            )
            if buys != ids:
                assert (await delivery_reports.report(state, caller, query)).start.hour != 0
            daily = await delivery_reports.report(state, caller, query)
            hourly = await delivery_reports.report(state, caller, replace(query, hourly=True))
            assert not any(b.hours for b in daily.buys)
            assert _figures(daily, False) == _figures(hourly, True), (first, last)
            compared += sum(len(b.days) for b in daily.buys)
        assert compared > 500  # the periods hold days to compare
    finally:
        await state.db.dispose()


async def test_a_report_naming_no_buys_covers_the_newest_and_says_how_many_match(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A buyer with years of history asking for delivery without ids gets the newest
    buys (bounded work), and a warning with how many matched and how to choose."""
    monkeypatch.setattr(delivery_reports, "UNLISTED_LIMIT", 25)
    state = await _seeded_state(tmp_path, backend, 60)
    try:
        async with state.db.transaction() as session:  # ended buys: nothing to simulate
            await session.exec(update(MediaBuy).values(state="canceled"))  # type: ignore[call-overload]
        async with state.db.session() as session:
            newest = (
                await session.exec(
                    select(MediaBuy.media_buy_id)
                    .order_by(col(MediaBuy.created_at).desc(), col(MediaBuy.media_buy_id))
                    .limit(25)
                )
            ).all()
        caller = await identity.authenticate(state.db, DEMO_TOKEN)
        query = delivery_reports.ReportQuery(media_buy_ids=[], statuses=["canceled"])
        capped = await delivery_reports.report(state, caller, query)
        assert [b.buy.media_buy_id for b in capped.buys] == list(newest)
        [warning] = capped.warnings
        assert warning.code == "RESULTS_TRUNCATED" and warning.field == "media_buy_ids"
        assert warning.details == {"matching": 60, "included": 25}
        # Naming buys is not capped (the tools allow up to 1000 ids).
        older = delivery_reports.ReportQuery(
            media_buy_ids=[f"mb_seed{i:08d}" for i in range(60)], statuses=[]
        )
        named = await delivery_reports.report(state, caller, older)
        assert len(named.buys) == 60 and named.warnings == []
    finally:
        await state.db.dispose()


async def test_get_media_buys_pages_over_mcp(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        for _ in range(3):
            created = await call(client, "create_media_buy", non_guaranteed())
            assert not created.is_error, created.data
        seen: list[str] = []
        cursor = None
        while True:
            args: dict = {"pagination": {"max_results": 2}}
            if cursor:
                args["pagination"]["cursor"] = cursor
            page = await call(client, "get_media_buys", args)
            assert not page.is_error, page.data
            seen += [b["media_buy_id"] for b in page.data["media_buys"]]
            info = page.data["pagination"]
            assert info["total_count"] >= 3
            if not info["has_more"]:
                break
            cursor = info["cursor"]
        tampered = await call(
            client, "get_media_buys", {"status_filter": "active", "pagination": {"cursor": cursor}}
        )
    assert len(seen) == len(set(seen)) == info["total_count"]
    assert tampered.error_codes == ["INVALID_REQUEST"]


async def test_too_many_ids_is_a_typed_error_not_a_database_failure(live: LiveServer) -> None:
    ids = [f"mb_{i:06d}" for i in range(1001)]
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        listed = await call(client, "get_media_buys", {"media_buy_ids": ids})
        report = await call(client, "get_media_buy_delivery", {"media_buy_ids": ids})
        fine = await call(client, "get_media_buys", {"media_buy_ids": ids[:1000]})
    for result in (listed, report):
        assert result.error_codes == ["VALIDATION_ERROR"], result.data
        assert result.error["field"] == "media_buy_ids"
    assert not fine.is_error
    assert len(fine.data["errors"]) == 1000  # each unknown id is named, none is served


async def test_a_buy_left_out_by_a_status_filter_is_not_reported_missing(
    live: LiveServer,
) -> None:
    """Asked for by id with a status that does not match, a buy is just not in the
    answer; it used to come back as MEDIA_BUY_NOT_FOUND — telling the buyer it did not
    exist (a buyer agent might book it again). An id that is not the caller's still is."""
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        created = await call(client, "create_media_buy", non_guaranteed())  # starts later
        buy_id = created.data["media_buy_id"]
        wanted = {"media_buy_ids": [buy_id, "mb_nobody"], "status_filter": "completed"}
        listed = await call(client, "get_media_buys", wanted)
        report = await call(client, "get_media_buy_delivery", wanted)
        pending = await call(client, "get_media_buys", {**wanted, "status_filter": "pending_start"})
    for answer in (listed, report):
        assert [e["field"] for e in answer.data["errors"]] == ["media_buy_ids[1]"], answer.data
    assert listed.data["media_buys"] == []
    assert [b["media_buy_id"] for b in pending.data["media_buys"]] == [buy_id]
