"""update_media_buy under concurrency: updates of one buy take turns on the buy's lease,
and a guaranteed package's new goal is confirmed and reserved before the ad server is
called — against other updates, bookings and resubmissions."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from adcp_agent_adapters.mock import MockAdapter

from adcp_agent.errors import AdcpError
from adcp_agent.services import booking as bookings
from adcp_agent.services import media_buys, media_updates
from tests import host_reads
from tests.media_helpers import key, non_guaranteed
from tests.support import DEMO_TOKEN, LiveServer, ToolCall, call, mcp_client

Meet = Callable[[], Awaitable[None]]


def _meeting() -> Meet:
    """Two calls wait for each other (on the server's event loop; each gives up after
    5 s, so code that never gets there fails its assertions rather than hanging)."""
    arrived: list[asyncio.Event] = []

    async def meet() -> None:
        if arrived:
            arrived[0].set()
            return
        arrived.append(asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived[0].wait(), 5)

    return meet


def _hold_first_line_update(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, list]:
    """The first update_line the mock ad server gets waits (up to 5 s) for the event;
    later ones go through. The event is made on the server's loop at first use."""
    release: list[asyncio.Event] = []
    update_line = MockAdapter.update_line

    async def held(self: MockAdapter, *args: Any) -> Any:
        if not release:
            release.append(asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release[0].wait(), 5)
        return await update_line(self, *args)

    monkeypatch.setattr(MockAdapter, "update_line", held)
    return release  # type: ignore[return-value]


def _budget(mb: str, package_id: str, budget: float) -> dict[str, Any]:
    return {
        "media_buy_id": mb,
        "packages": [{"package_id": package_id, "budget": budget}],
        "idempotency_key": key("u"),
    }


async def _buy(client: Any, mb: str) -> dict[str, Any]:
    listed = await call(client, "get_media_buys", {"media_buy_ids": [mb]})
    return listed.data["media_buys"][0]


async def test_concurrent_updates_of_one_buy_both_land(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two updates of different packages at once: the second waits for the first's
    lease and plans from what it committed. Before, both planned from the same rows
    and the later commit wrote back the package budget the earlier one had changed."""
    args = non_guaranteed(budget=4000)
    args["packages"].append({**args["packages"][0], "budget": 3000})
    release = _hold_first_line_update(monkeypatch)
    claim = media_updates._claim
    busy: list[str] = []

    async def watching(*a: Any, **k: Any) -> Any:
        got = await claim(*a, **k)
        if got == "busy":
            busy.append(got)
            release[0].set()  # the other update holds the lease: let it finish
        return got

    monkeypatch.setattr(media_updates, "_claim", watching)
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        created = await call(client, "create_media_buy", args)
        mb = created.data["media_buy_id"]
        p1, p2 = (p["package_id"] for p in created.data["packages"])
        results = await asyncio.gather(
            call(client, "update_media_buy", _budget(mb, p1, 6000)),
            call(client, "update_media_buy", _budget(mb, p2, 3500)),
        )
        buy = await _buy(client, mb)
    assert [r.error_codes for r in results] == [[], []], [r.data for r in results]
    assert busy  # one of them waited for the other
    budgets = {p["package_id"]: p["budget"] for p in buy["packages"]}
    assert budgets == {p1: 6000, p2: 3500}
    assert buy["total_budget"] == 9500 and buy["revision"] == 3


async def test_an_update_waits_for_another_only_so_long(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one update is at the ad server, another of the same buy waits, then
    answers CONFLICT (transient: retry); the lease is given back with the commit."""
    monkeypatch.setattr(media_updates, "WAIT_SECONDS", 0.2)
    release = _hold_first_line_update(monkeypatch)
    update = media_updates.update

    async def releasing(*a: Any, **k: Any) -> Any:
        try:
            return await update(*a, **k)
        except AdcpError as exc:
            if exc.code == "CONFLICT":
                release[0].set()
            raise

    monkeypatch.setattr(media_updates, "update", releasing)
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        created = await call(client, "create_media_buy", non_guaranteed(budget=4000))
        mb, pkg = created.data["media_buy_id"], created.data["packages"][0]["package_id"]
        results = await asyncio.gather(
            call(client, "update_media_buy", _budget(mb, pkg, 5000)),
            call(client, "update_media_buy", _budget(mb, pkg, 6000)),
        )
        monkeypatch.setattr(media_updates, "WAIT_SECONDS", 0.0)  # a held lease answers at once
        after = await call(client, "update_media_buy", _budget(mb, pkg, 7000))
        buy = await _buy(client, mb)
    [waited] = [r for r in results if r.error_codes]
    [applied] = [r for r in results if not r.error_codes]
    assert waited.error_codes == ["CONFLICT"] and waited.error["recovery"] == "transient"
    assert waited.error["field"] == "media_buy_id"
    assert applied.data["revision"] == 2
    assert not after.is_error, after.data
    assert buy["packages"][0]["budget"] == 7000 and buy["revision"] == 3


async def _book_host_read(
    client: Any, budget: float, flight_args: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """A guaranteed host-read buy awaiting approval: its id and its package."""
    booked = await call(client, "create_media_buy", host_reads.request(budget, flight_args))
    assert not booked.is_error, booked.data
    mb = booked.data["message"].split()[2]
    [package] = (await _buy(client, mb))["packages"]
    return mb, package


@pytest.mark.parametrize("first", ["update", "booking"])
async def test_a_budget_increase_and_a_booking_never_both_take_the_last_inventory(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    """A guaranteed package grows while another buy books the same product; each is
    checked before the other commits and each alone fits. Whichever reserves second
    finds the other's reservation and is refused: the booking confirms while the
    update is still at the ad server (its larger goal reserved ahead), or the update
    confirms after the booking committed."""
    avail_args, flight_args = host_reads.flight(days_ahead=70 if first == "update" else 190)
    meet = _meeting()
    committed: list[asyncio.Event] = []  # made on the server's loop

    def first_committed() -> asyncio.Event:
        if not committed:
            committed.append(asyncio.Event())
        return committed[0]

    async def checked(original: Any, second: bool, *a: Any, **k: Any) -> Any:
        checked = await original(*a, **k)
        await meet()
        if second:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first_committed().wait(), 5)
        return checked

    async def finished(original: Any, *a: Any, **k: Any) -> Any:
        try:
            return await original(*a, **k)
        finally:
            first_committed().set()

    booked: list[asyncio.Event] = []
    update_line, create = MockAdapter.update_line, bookings.create

    async def after_the_booking(self: MockAdapter, *a: Any) -> Any:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(booked[0].wait(), 5)
        return await update_line(self, *a)

    async def booking(*a: Any, **k: Any) -> Any:
        booked.append(asyncio.Event())
        try:
            return await create(*a, **k)
        finally:
            booked[0].set()

    sides = {  # (module, its check), (module, its commit)
        "update": ((media_updates, "plan_ops"), (media_updates, "_claim")),
        "booking": ((media_buys, "prepare"), (bookings, "create")),
    }
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        available = await host_reads.available(client, avail_args)
        mb, package = await _book_host_read(client, host_reads.budget(available, 0.3), flight_args)
        for side, ((checks, check), (commits, commit)) in sides.items():
            check_fn, commit_fn = getattr(checks, check), getattr(commits, commit)
            second = side != first
            monkeypatch.setattr(checks, check, functools.partial(checked, check_fn, second))
            if not second:
                monkeypatch.setattr(commits, commit, functools.partial(finished, commit_fn))
        if first == "update":
            monkeypatch.setattr(MockAdapter, "update_line", after_the_booking)
            monkeypatch.setattr(bookings, "create", booking)
        grow = _budget(mb, package["package_id"], host_reads.budget(available, 0.8))
        results: list[ToolCall] = await asyncio.gather(
            call(client, "update_media_buy", grow),
            call(
                client,
                "create_media_buy",
                host_reads.request(host_reads.budget(available, 0.6), flight_args),
            ),
        )
        monkeypatch.undo()
        left = await host_reads.available(client, avail_args)
    outcomes = {
        side: r.error_codes[0] if r.error_codes else "ok"
        for side, r in zip(sides, results, strict=True)
    }
    other = "booking" if first == "update" else "update"
    assert outcomes == {first: "ok", other: "PRODUCT_UNAVAILABLE"}, [r.data for r in results]
    [refused] = [r for r in results if r.error_codes]
    assert "another booking took" in refused.error["message"]
    taken = 0.8 if first == "update" else 0.3 + 0.6
    assert abs(left - available * (1 - taken)) < available * 0.01


async def test_a_refused_update_gives_back_what_it_reserved(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The larger goal is reserved before the ad server is called; when the ad server
    refuses the change, the reservation and the lease go, and the revision stays."""
    avail_args, flight_args = host_reads.flight(days_ahead=110)

    async def refuse(self: MockAdapter, *args: Any) -> None:
        raise AdcpError("SERVICE_UNAVAILABLE", "The ad server is down.", recovery="transient")

    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        available = await host_reads.available(client, avail_args)
        mb, package = await _book_host_read(client, host_reads.budget(available, 0.3), flight_args)
        booked = await host_reads.available(client, avail_args)
        monkeypatch.setattr(MockAdapter, "update_line", refuse)
        failed = await call(
            client,
            "update_media_buy",
            _budget(mb, package["package_id"], host_reads.budget(available, 0.8)),
        )
        after_failure = await host_reads.available(client, avail_args)
        unchanged = await _buy(client, mb)
        monkeypatch.undo()
        monkeypatch.setattr(media_updates, "WAIT_SECONDS", 0.0)  # a held lease answers at once
        retried = await call(
            client,
            "update_media_buy",
            _budget(mb, package["package_id"], host_reads.budget(available, 0.5)),
        )
        after_retry = await host_reads.available(client, avail_args)
    assert failed.error_codes == ["SERVICE_UNAVAILABLE"]
    assert after_failure == booked
    assert unchanged["revision"] == 1 and unchanged["packages"][0]["budget"] == package["budget"]
    assert not retried.is_error, retried.data
    assert retried.data["revision"] == 2
    assert abs(after_retry - available * 0.5) < available * 0.01


async def test_resubmitting_a_rejected_buy_checks_its_inventory_again(live: LiveServer) -> None:
    """A rejected buy holds no inventory; sold to someone else meanwhile, it cannot
    simply be resubmitted for approval."""
    avail_args, flight_args = host_reads.flight(days_ahead=150)
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        available = await host_reads.available(client, avail_args)
        first = await call(
            client,
            "create_media_buy",
            host_reads.request(host_reads.budget(available, 0.6), flight_args),
        )
        mb, task_id = first.data["message"].split()[2], first.data["task_id"]
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "adcp_agent.cli", "approve", task_id, "--reject",
            "--reason", "wrong flight", "--data-dir", str(live.data_dir),
            env=live.cli_env(), stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        assert await cli.wait() == 0
        second = await call(
            client,
            "create_media_buy",
            host_reads.request(host_reads.budget(available, 0.6), flight_args),
        )
        resubmitted = await call(
            client, "update_media_buy", {"media_buy_id": mb, "action": "submit_for_approval"}
        )
        buy = await _buy(client, mb)
    assert second.data["status"] == "submitted"
    assert resubmitted.error_codes == ["PRODUCT_UNAVAILABLE"], resubmitted.data
    assert buy["status"] == "rejected" and buy["revision"] == 2
