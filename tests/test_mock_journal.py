"""The mock ad server's persistence (``mock_journal``): what a publisher running one or
more servers on the same state file would notice. Orders, line and creative changes made
through one adapter are seen by another and survive a restart; a torn tail, a compaction,
an old whole-snapshot state file and several processes appending at once lose nothing.

A change is made under the journal's lock, so a change another process makes meanwhile
waits and applies after it; records appended after a torn tail are not lost (the tail is
cut off under the lock); two servers starting on an old snapshot file import it once."""

from __future__ import annotations

import asyncio
import pickle
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from adcp_agent_adapters import mock_journal
from adcp_agent_adapters.mock import MockAdapter, load_state, store_order

from adcp_agent.adapter_protocol import (
    ExternalOrderState,
    LineChange,
)
from tests.mock_support import (
    creative_spec,
    line_spec,
    open_adapter,
    order_spec,
    state_file,
)

__all__ = ["open_adapter", "state_file"]  # the fixtures

ROOT = Path(__file__).resolve().parent.parent
HEADER = struct.Struct(">I")  # the journal's record length prefix


def journal_of(state_file: Path) -> Path:
    return state_file.with_suffix(".journal")


def read_journal(path: Path) -> tuple[list[tuple[str, str, Any]], int]:
    """Every complete record in the journal file, and how many bytes they span."""
    data = path.read_bytes()
    records: list[tuple[str, str, Any]] = []
    pos = 0
    while pos + HEADER.size <= len(data):
        (size,) = HEADER.unpack_from(data, pos)
        end = pos + HEADER.size + size
        if end > len(data):
            break
        records.append(pickle.loads(data[pos + HEADER.size : end]))  # noqa: S301
        pos = end
    return records, pos


def names_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def append_raw(state_file: Path, tail: bytes) -> None:
    with journal_of(state_file).open("ab") as fh:
        fh.write(tail)


# -- two servers on one state file -----------------------------------------------------


async def test_two_servers_on_one_state_file_see_each_others_changes(
    open_adapter: Callable[[], MockAdapter],
) -> None:
    first, second = open_adapter(), open_adapter()

    booked = await first.create_order(order_spec("mb_1"))
    order_id = booked.external_order_id
    line_1, line_2 = booked.external_line_ids["pkg_1"], booked.external_line_ids["pkg_2"]
    assert await second.sync_orders([order_id]) == [
        ExternalOrderState(order_id, "draft", {line_1: "ready", line_2: "ready"})
    ]

    # The second server activates and pauses; the first sees the pause.
    await second.order_action(order_id, "activate")
    await second.order_action(order_id, "pause")
    assert (await first.sync_orders([order_id]))[0].status == "paused"
    assert first.orders[order_id].status == "paused"

    # A creative uploaded through one server can be assigned through the other.
    creative_id = await first.upload_creative(creative_spec("cr_1"))
    await second.assign_creative(order_id, line_1, creative_id)

    # Last write per order wins: the first pauses a line, the second resumes it, then the
    # first resumes the order (valid only because it sees the second's pause).
    await first.line_action(order_id, line_1, "pause")
    assert (await second.sync_orders([order_id]))[0].line_statuses[line_1] == "paused"
    await second.line_action(order_id, line_1, "resume")
    await first.order_action(order_id, "resume")

    expected = [ExternalOrderState(order_id, "delivering", {line_1: "ready", line_2: "ready"})]
    assert await first.sync_orders([order_id]) == expected
    assert await second.sync_orders([order_id]) == expected
    assert first.orders[order_id].lines[line_1].creatives == {creative_id}
    assert second.creatives == {creative_id: creative_spec("cr_1")}

    # A third server started now agrees with both.
    third = open_adapter()
    assert await third.sync_orders([order_id]) == expected
    assert third.orders[order_id].lines[line_1].creatives == {creative_id}
    assert third.creatives == {creative_id: creative_spec("cr_1")}


async def test_an_order_changed_in_the_ad_server_ui_reaches_a_running_server(
    state_file: Path, open_adapter: Callable[[], MockAdapter]
) -> None:
    server = open_adapter()
    booked = await server.create_order(order_spec("mb_ui"))
    order_id = booked.external_order_id
    await server.order_action(order_id, "activate")

    for status in ("paused", "canceled"):  # two UI edits to one order: the later one wins
        orders, _ = load_state(state_file)
        orders[order_id].status = status
        store_order(state_file, order_id, orders[order_id])

    assert (await server.sync_orders([order_id]))[0].status == "canceled"
    assert open_adapter().orders[order_id].status == "canceled"


# -- restart -----------------------------------------------------------------------------


async def test_a_restarted_server_finds_everything_it_recorded(
    state_file: Path, open_adapter: Callable[[], MockAdapter]
) -> None:
    before = open_adapter()
    a = await before.create_order(order_spec("mb_a", guaranteed=True))
    b = await before.create_order(order_spec("mb_b"))
    a_id, b_id = a.external_order_id, b.external_order_id
    a_line = a.external_line_ids["pkg_1"]
    await before.order_action(a_id, "approve")
    await before.order_action(a_id, "activate")
    await before.line_action(b_id, b.external_line_ids["pkg_2"], "pause")
    await before.update_line(a_id, a_line, LineChange(budget=7500.0, daily_budget=250.0))
    added = await before.add_line(b_id, line_spec("pkg_3"))
    creative_id = await before.upload_creative(creative_spec("cr_1"))
    await before.assign_creative(a_id, a_line, creative_id)
    expected = await before.sync_orders([a_id, b_id])
    before.close()

    after = open_adapter()  # the restarted server

    assert await after.sync_orders([a_id, b_id]) == expected
    assert expected[0].status == "delivering"
    assert expected[1].line_statuses == {
        b.external_line_ids["pkg_1"]: "ready",
        b.external_line_ids["pkg_2"]: "paused",
        added: "ready",
    }
    line = after.orders[a_id].lines[a_line]
    assert (line.spec.budget, line.daily_budget, line.creatives) == (7500.0, 250.0, {creative_id})
    assert after.orders[b_id].lines[added].spec == line_spec("pkg_3")
    assert after.creatives == {creative_id: creative_spec("cr_1")}
    orders, creatives = load_state(state_file)
    assert set(orders) == {a_id, b_id} and set(creatives) == {creative_id}


# -- torn tail ---------------------------------------------------------------------------


def _cut_record() -> bytes:
    """The first half of a real record: a writer killed in the middle of its append."""
    blob = pickle.dumps(
        ("creative", "mock_cr_torn", creative_spec("cr_torn")), protocol=pickle.HIGHEST_PROTOCOL
    )
    return HEADER.pack(len(blob)) + blob[: len(blob) // 2]


TORN_TAILS = {
    "short_header": b"\x00\x00",
    "header_promises_more": HEADER.pack(1000) + b"xyz",
    "record_cut_off": _cut_record(),
    # Far beyond what follows: records appended after it are silently invisible.
    "header_promises_a_megabyte": HEADER.pack(1 << 20) + b"xyz",
}


async def _book_before_tear(adapter: MockAdapter) -> tuple[str, str]:
    booked = await adapter.create_order(order_spec("mb_before"))
    await adapter.order_action(booked.external_order_id, "activate")
    creative_id = await adapter.upload_creative(creative_spec("cr_before"))
    return booked.external_order_id, creative_id


@pytest.mark.parametrize("tail", TORN_TAILS.values(), ids=TORN_TAILS.keys())
async def test_a_torn_tail_is_skipped_on_load(
    tail: bytes, state_file: Path, open_adapter: Callable[[], MockAdapter]
) -> None:
    writer = open_adapter()
    order_id, creative_id = await _book_before_tear(writer)
    writer.close()
    append_raw(state_file, tail)

    fresh = open_adapter()

    assert set(fresh.orders) == {order_id}
    assert (await fresh.sync_orders([order_id]))[0].status == "delivering"
    assert fresh.creatives == {creative_id: creative_spec("cr_before")}
    assert set(load_state(state_file)[0]) == {order_id}


@pytest.mark.parametrize("tail", TORN_TAILS.values(), ids=TORN_TAILS.keys())
async def test_writes_after_a_torn_tail_are_seen_by_the_next_server(
    tail: bytes, state_file: Path, open_adapter: Callable[[], MockAdapter]
) -> None:
    writer = open_adapter()
    order_id, _ = await _book_before_tear(writer)
    writer.close()
    append_raw(state_file, tail)

    restarted = open_adapter()
    booked = [await restarted.create_order(order_spec(f"mb_after_{i}")) for i in range(3)]

    fresh = open_adapter()
    assert set(fresh.orders) == {order_id} | {b.external_order_id for b in booked}


# -- a change appended by another server while this one writes ----------------------------


async def test_a_change_made_by_another_server_during_ours_is_applied_after_it(
    state_file: Path,
    open_adapter: Callable[[], MockAdapter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The publisher pauses an order in the ad server's UI (another process) while this
    server is in the middle of changing it: the UI's change waits for ours and applies
    after it, and this server's next change starts from the paused order."""
    server = open_adapter()
    booked = await server.create_order(order_spec("mb_w"))
    order_id, line_1 = booked.external_order_id, booked.external_line_ids["pkg_1"]
    await server.order_action(order_id, "activate")

    journal = server._journal
    assert journal is not None
    real_put = journal.put
    ui = threading.Thread(target=lambda: _pause_in_ui(state_file, order_id))

    def put_while_the_ui_pauses(kind: str, key: str, value: Any) -> None:
        monkeypatch.setattr(journal, "put", real_put)
        ui.start()  # blocks on the journal's lock until this change is recorded
        time.sleep(0.2)  # every chance to write first, were it not locked out
        real_put(kind, key, value)

    monkeypatch.setattr(journal, "put", put_while_the_ui_pauses)
    await server.line_action(order_id, line_1, "pause")
    ui.join(timeout=10)
    assert not ui.is_alive()

    assert (await server.sync_orders([order_id]))[0].status == "paused"
    await server.update_line(order_id, line_1, LineChange(budget=6000.0))
    after = open_adapter().orders[order_id]
    assert after.status == "paused"  # not reverted by this server's later change
    assert after.lines[line_1].status == "paused"
    assert after.lines[line_1].spec.budget == 6000.0


def _gone(path: Path) -> bool:
    return not path.exists()


def _pause_in_ui(state_file: Path, order_id: str) -> None:
    ui = MockAdapter(state_file=state_file)  # another process's view of the ad server
    try:
        asyncio.run(ui.order_action(order_id, "pause"))
    finally:
        ui.close()


# -- compaction --------------------------------------------------------------------------


async def test_compaction_shrinks_the_journal_and_no_write_is_lost(
    state_file: Path,
    open_adapter: Callable[[], MockAdapter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mock_journal, "COMPACT_MIN_BYTES", 4096)
    monkeypatch.setattr(mock_journal, "COMPACT_FACTOR", 4)
    early = open_adapter()  # opened (and appending) before the compaction
    booked = [await early.create_order(order_spec(f"mb_{i}")) for i in range(3)]
    ids = [b.external_order_id for b in booked]
    lines = [b.external_line_ids["pkg_1"] for b in booked]
    for order_id in ids:
        await early.order_action(order_id, "activate")
    for _ in range(10):  # many updates to few orders
        for order_id, line_id in zip(ids, lines, strict=True):
            await early.line_action(order_id, line_id, "pause")
            await early.line_action(order_id, line_id, "resume")
    await early.line_action(ids[0], lines[0], "pause")
    creative_id = await early.upload_creative(creative_spec("cr_1"))
    await early.assign_creative(ids[2], lines[2], creative_id)
    expected = await early.sync_orders(ids)
    path = journal_of(state_file)
    records_before, _ = read_journal(path)
    size_before = path.stat().st_size
    assert len(records_before) >= 4 * 4 and size_before >= 4096  # worth compacting

    compacting = open_adapter()  # the next open compacts

    records_after, consumed = read_journal(path)
    assert path.stat().st_size < size_before
    assert consumed == path.stat().st_size
    assert len(records_after) == 4  # one per live entry: three orders, one creative
    assert await compacting.sync_orders(ids) == expected
    assert compacting.orders[ids[2]].lines[lines[2]].creatives == {creative_id}
    assert compacting.creatives == {creative_id: creative_spec("cr_1")}
    assert not list(path.parent.glob("*.compact"))

    # The early server still holds the replaced file open; its next writes must land in
    # the new one.
    await early.order_action(ids[1], "pause")
    await early.line_action(ids[2], lines[2], "pause")

    fresh = open_adapter()
    states = {s.external_order_id: s for s in await fresh.sync_orders(ids)}
    assert states[ids[0]] == expected[0]
    assert states[ids[1]].status == "paused"
    assert states[ids[2]].line_statuses[lines[2]] == "paused"
    assert fresh.orders[ids[2]].lines[lines[2]].creatives == {creative_id}
    assert await compacting.sync_orders(ids) == await fresh.sync_orders(ids)
    records, consumed = read_journal(path)
    assert len(records) == 6 and consumed == path.stat().st_size


async def test_a_small_or_mostly_live_journal_is_not_compacted(
    state_file: Path,
    open_adapter: Callable[[], MockAdapter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mock_journal, "COMPACT_FACTOR", 4)
    server = open_adapter()
    booked = [await server.create_order(order_spec(f"mb_{i}")) for i in range(6)]
    for b in booked[:3]:
        await server.order_action(b.external_order_id, "activate")
    path = journal_of(state_file)
    size = path.stat().st_size

    monkeypatch.setattr(mock_journal, "COMPACT_MIN_BYTES", size + 1)  # too small
    open_adapter()
    assert path.stat().st_size == size
    monkeypatch.setattr(mock_journal, "COMPACT_MIN_BYTES", 1)  # 9 records, 6 live entries
    open_adapter()
    assert path.stat().st_size == size
    assert len(read_journal(path)[0]) == 9


# -- the earlier whole-snapshot state file -----------------------------------------------


async def test_an_old_snapshot_state_file_is_imported_once(
    state_file: Path, open_adapter: Callable[[], MockAdapter]
) -> None:
    old_server = MockAdapter()  # in memory: what the earlier version pickled
    booked = await old_server.create_order(order_spec("mb_old"))
    order_id, line_2 = booked.external_order_id, booked.external_line_ids["pkg_2"]
    await old_server.order_action(order_id, "activate")
    await old_server.line_action(order_id, line_2, "pause")
    creative_id = await old_server.upload_creative(creative_spec("cr_old"))
    state_file.parent.mkdir(parents=True)
    with state_file.open("wb") as fh:
        pickle.dump((old_server.orders, old_server.creatives), fh)
    expected = await old_server.sync_orders([order_id])

    upgraded = open_adapter()

    assert await upgraded.sync_orders([order_id]) == expected
    assert upgraded.creatives == {creative_id: creative_spec("cr_old")}
    assert {"demo-mock.state", "demo-mock.state.imported"} & names_in(state_file.parent) == {
        "demo-mock.state.imported"
    }

    await upgraded.order_action(order_id, "pause")
    size = journal_of(state_file).stat().st_size
    again = open_adapter()
    assert (await again.sync_orders([order_id]))[0].status == "paused"
    assert journal_of(state_file).stat().st_size == size

    # Even the old file put back (restored from a backup) does not overwrite the journal.
    (state_file.parent / "demo-mock.state.imported").rename(state_file)
    restored = open_adapter()
    assert (await restored.sync_orders([order_id]))[0].status == "paused"
    assert journal_of(state_file).stat().st_size == size


async def test_two_servers_starting_on_an_old_snapshot_both_start(
    state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second server starting while the first imports the old state file waits for
    the import, finds it done and starts; the orders are imported once."""
    from adcp_agent_adapters import mock

    old_server = MockAdapter()
    booked = await old_server.create_order(order_spec("mb_old"))
    state_file.parent.mkdir(parents=True)
    with state_file.open("wb") as fh:
        pickle.dump((old_server.orders, old_server.creatives), fh)

    started: list[MockAdapter] = []
    other = threading.Thread(target=lambda: started.append(MockAdapter(state_file=state_file)))

    class OtherServerStartsMeanwhile(mock_journal.Journal):
        def put(self, kind: str, key: str, value: Any) -> None:
            if not other.is_alive() and not started:
                monkeypatch.setattr(mock, "Journal", mock_journal.Journal)
                other.start()  # waits on the journal's lock until this import is done
                time.sleep(0.2)
            super().put(kind, key, value)

    monkeypatch.setattr(mock, "Journal", OtherServerStartsMeanwhile)
    this = MockAdapter(state_file=state_file)
    other.join(timeout=10)
    try:
        assert started and set(started[0].orders) == {booked.external_order_id}
        assert set(this.orders) == {booked.external_order_id}
        journal_file = state_file.with_suffix(".journal")
        assert len(list(mock_journal._blobs(journal_file.read_bytes()))) == 1  # once
        assert _gone(state_file)
    finally:
        this.close()
        for adapter in started:
            adapter.close()


# -- several processes appending at once -------------------------------------------------

WORKER = """
import asyncio, sys
from pathlib import Path

from adcp_agent_adapters.mock import MockAdapter
from tests.mock_support import order_spec


async def main(state_file, prefix, count):
    adapter = MockAdapter(state_file=Path(state_file))
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for i in range(count):
        booked = await adapter.create_order(order_spec(f"{prefix}_{i}"))
        if i % 2:
            await adapter.order_action(booked.external_order_id, "activate")
    adapter.close()


asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def test_processes_appending_at_once_lose_no_record(
    state_file: Path, open_adapter: Callable[[], MockAdapter]
) -> None:
    prefixes, count = ("p0", "p1", "p2"), 100
    state_file.parent.mkdir(parents=True)
    workers = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", WORKER, str(state_file), prefix, str(count)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for prefix in prefixes
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outcomes = [worker.communicate(timeout=300) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (_, stderr) in zip(workers, outcomes, strict=True):
        assert worker.returncode == 0, stderr

    records, consumed = read_journal(journal_of(state_file))
    assert consumed == journal_of(state_file).stat().st_size  # no torn or interleaved bytes
    assert len(records) == len(prefixes) * (count + count // 2)

    fresh = open_adapter()
    by_buy = {order.spec.media_buy_id: order for order in fresh.orders.values()}
    assert set(by_buy) == {f"{p}_{i}" for p in prefixes for i in range(count)}
    for prefix in prefixes:
        for i in range(count):
            assert by_buy[f"{prefix}_{i}"].status == ("delivering" if i % 2 else "draft")
