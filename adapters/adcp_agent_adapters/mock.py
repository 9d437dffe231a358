"""The mock ad server: a deterministic in-process stand-in for a real one.

It keeps orders, lines and creatives in memory with the same state rules a real ad server
enforces (a paused line does not deliver, an archived order takes no changes), and its
capacity model reads each product's ``inventory`` block (``daily_impressions`` and
``fill_rate``), so forecasts depend on the flight length and on what is already booked.
Given a state file it persists its "ad server" state next to it, one journal record per
change (``mock_journal``), so a restarted server, the CLI or a second server process
finds the orders it booked.
"""

from __future__ import annotations

import functools
import hashlib
import pickle
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from adcp_agent.adapter_protocol import (
    CreativeSpec,
    DeliveryRow,
    ExternalOrderState,
    Forecast,
    ForecastRequest,
    InventoryItem,
    LineAction,
    LineChange,
    LineSpec,
    OrderAction,
    OrderResult,
    OrderSpec,
)
from adcp_agent.errors import AdcpError
from adcp_agent_adapters.mock_journal import Journal

P = ParamSpec("P")
T = TypeVar("T")


class MockConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    network_name: str = Field(default="Mock Ad Server", max_length=200)
    fill_rate: float = Field(default=1.0, gt=0, le=1, description="Share of inventory sold.")
    fail_on: list[str] = Field(
        default_factory=list,
        description="Operations that fail (create_order, update_line, ...): lets tests and "
        "sandbox buyers see how upstream failures are handled.",
    )


@dataclass
class _Line:
    spec: LineSpec
    status: str = "ready"  # ready | delivering | paused
    creatives: set[str] = field(default_factory=set)
    daily_budget: float | None = None
    device_bid_adjustments: dict[str, float] = field(default_factory=dict)


@dataclass
class _Order:
    spec: OrderSpec
    status: str  # draft | pending_approval | approved | delivering | paused | archived | canceled
    lines: dict[str, _Line] = field(default_factory=dict)


_ORDER_TRANSITIONS: dict[str, dict[str, str]] = {
    "activate": {"draft": "delivering", "approved": "delivering", "delivering": "delivering"},
    "approve": {"draft": "approved", "pending_approval": "approved", "approved": "approved"},
    "pause": {"delivering": "paused", "approved": "paused", "paused": "paused"},
    "resume": {"paused": "delivering", "delivering": "delivering"},
    "archive": {
        s: "archived"
        for s in (
            "draft",
            "pending_approval",
            "approved",
            "delivering",
            "paused",
            "canceled",
            "archived",
        )
    },
    "cancel": {
        s: "canceled"
        for s in ("draft", "pending_approval", "approved", "delivering", "paused", "canceled")
    },
}


def _changes(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Run an adapter operation as one journal change (see ``MockAdapter._change``).
    The operations do not await inside, so the lock is never held across a suspension."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        self = args[0]
        assert isinstance(self, MockAdapter)
        with self._change():
            return await method(*args, **kwargs)

    return wrapper


class _JournalOrders(MutableMapping[str, _Order]):
    """The orders as the journal keeps them (bytes), with the ones in use as objects.

    An order taken out (``[]``, ``get``) stays the same object while it is in use, so a
    change made to it is recorded by ``MockAdapter._save_order``; the objects of the
    ``LIVE`` most recently used orders are kept, the rest only as the journal's bytes
    (see mock_journal: half the memory, and nothing for the garbage collector to
    walk)."""

    LIVE = 256

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._live: OrderedDict[str, _Order] = OrderedDict()

    def forget(self) -> None:
        """Drop the objects: the journal has others' changes (read afresh when used)."""
        self._live.clear()

    def get(self, order_id: str, default: Any = None) -> Any:  # type: ignore[override]
        order = self._live.get(order_id)
        if order is not None:
            self._live.move_to_end(order_id)
            return order
        order = self._journal.get("order", order_id)
        if order is None:
            return default
        self._keep(order_id, order)
        return order

    def __getitem__(self, order_id: str) -> _Order:
        order = self.get(order_id)
        if order is None:
            raise KeyError(order_id)
        return order  # type: ignore[no-any-return]

    def __setitem__(self, order_id: str, order: _Order) -> None:
        self._keep(order_id, order)

    def __delitem__(self, order_id: str) -> None:
        raise TypeError("an ad server's orders are cancelled or archived, not deleted")

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._live or ("order", order_id) in self._journal.entries

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._journal.keys("order"), *self._live]))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _keep(self, order_id: str, order: _Order) -> None:
        self._live[order_id] = order
        self._live.move_to_end(order_id)
        while len(self._live) > self.LIVE:
            self._live.popitem(last=False)


class MockAdapter:
    name: ClassVar[str] = "mock"
    config_model: ClassVar[type[BaseModel]] = MockConfig
    wants_state_file: ClassVar[bool] = True
    # The journal is not fsynced (see mock_journal): a power failure may lose orders.
    orders_survive_power_loss: ClassVar[bool] = False
    # Its orders are this process's dict and journal: booked inside the buy's transaction.
    orders_are_local: ClassVar[bool] = True

    def __init__(self, config: MockConfig | None = None, *, state_file: Path | None = None):
        self.config = config or MockConfig()
        self.state_file = state_file
        self.orders: MutableMapping[str, _Order] = {}
        self.creatives: dict[str, CreativeSpec] = {}
        self._journal: Journal | None = None
        if state_file is not None:
            self._journal = Journal(state_file.with_suffix(".journal"))
            _import_snapshot(state_file, self._journal)
            self.orders = _JournalOrders(self._journal)
            self._load()

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()

    def _load(self) -> None:
        assert self._journal is not None and isinstance(self.orders, _JournalOrders)
        self.orders.forget()
        journal = self._journal
        self.creatives = {key: journal.get("creative", key) for key in journal.keys("creative")}

    def _refresh(self) -> None:
        """Pick up changes another process (the CLI, a second server) recorded."""
        if self._journal is not None and self._journal.refresh():
            self._load()

    @contextmanager
    def _change(self) -> Iterator[None]:
        """One change to the ad server's state, made on the current state and recorded
        before any other process can change it (the journal's lock)."""
        if self._journal is None:
            yield
            return
        with self._journal.locked() as others_changed:
            if others_changed:
                self._load()
            yield

    def _save_order(self, order_id: str) -> None:
        if self._journal is not None:
            self._journal.put("order", order_id, self.orders[order_id])

    def _save_creative(self, creative_id: str) -> None:
        if self._journal is not None:
            self._journal.put("creative", creative_id, self.creatives[creative_id])

    def _maybe_fail(self, operation: str) -> None:
        self._refresh()
        if operation in self.config.fail_on:
            raise AdcpError(
                "SERVICE_UNAVAILABLE",
                f"The ad server rejected {operation} (simulated outage).",
                recovery="transient",
                details={"ad_server": "mock", "operation": operation},
            )

    def _order(self, external_order_id: str) -> _Order:
        self._refresh()
        order = self.orders.get(external_order_id)
        if order is None:
            raise AdcpError(
                "REFERENCE_NOT_FOUND",
                f"Order '{external_order_id}' does not exist on the ad server.",
                details={"ad_server": "mock"},
            )
        return order

    async def health(self) -> bool:
        return True

    async def sync_inventory(self) -> list[InventoryItem]:
        return [
            InventoryItem("mock_root", self.config.network_name, "network"),
            InventoryItem("mock_display", "Display placements", "ad_unit", "mock_root"),
            InventoryItem("mock_video", "Video placements", "ad_unit", "mock_root"),
            InventoryItem("mock_audio", "Audio streams", "ad_unit", "mock_root"),
            InventoryItem("mock_ctv", "CTV apps", "ad_unit", "mock_root"),
        ]

    async def forecast(self, request: ForecastRequest) -> Forecast:
        seconds = max((request.end - request.start).total_seconds(), 0.0)
        daily = float(request.inventory.get("daily_impressions", 0))
        fill = float(request.inventory.get("fill_rate", 1.0)) * self.config.fill_rate
        capacity = int(daily * fill * seconds / 86_400)
        available = max(capacity - request.reserved_impressions, 0)
        return Forecast(available_impressions=available, capacity_impressions=capacity)

    @_changes
    async def create_order(self, spec: OrderSpec) -> OrderResult:
        self._maybe_fail("create_order")
        order_id = _order_id(spec.media_buy_id)
        guaranteed = any(line.guaranteed for line in spec.lines)
        order = _Order(spec, status="pending_approval" if guaranteed else "draft")
        line_ids: dict[str, str] = {}
        for i, line in enumerate(spec.lines, start=1):
            line_id = f"{order_id}_l{i}"
            order.lines[line_id] = _Line(line)
            line_ids[line.package_id] = line_id
        self.orders[order_id] = order
        self._save_order(order_id)
        return OrderResult(order_id, line_ids)

    @_changes
    async def add_line(self, external_order_id: str, line: LineSpec) -> str:
        self._maybe_fail("add_line")
        order = self._order(external_order_id)
        line_id = f"{external_order_id}_l{len(order.lines) + 1}"
        order.lines[line_id] = _Line(line)
        self._save_order(external_order_id)
        return line_id

    @_changes
    async def update_line(
        self, external_order_id: str, external_line_id: str, change: LineChange
    ) -> None:
        self._maybe_fail("update_line")
        order = self._order(external_order_id)
        if order.status in ("archived", "canceled"):
            raise AdcpError("INVALID_STATE", f"Order is {order.status} on the ad server.")
        line = order.lines.get(external_line_id)
        if line is None:
            raise AdcpError("REFERENCE_NOT_FOUND", f"Line '{external_line_id}' not found.")
        updates = {
            k: v
            for k, v in {
                "budget": change.budget,
                "impressions_goal": change.impressions_goal,
                "rate": change.rate,
                "start": change.start,
                "end": change.end,
                "targeting": change.targeting,
                "pacing": change.pacing,
            }.items()
            if v is not None
        }
        line.spec = replace(line.spec, **updates)
        if change.daily_budget is not None:
            line.daily_budget = change.daily_budget
        if change.device_bid_adjustments is not None:
            line.device_bid_adjustments = dict(change.device_bid_adjustments)
        self._save_order(external_order_id)

    @_changes
    async def order_action(self, external_order_id: str, action: OrderAction) -> None:
        self._maybe_fail(f"order_{action}")
        order = self._order(external_order_id)
        target = _ORDER_TRANSITIONS[action].get(order.status)
        if target is None:
            raise AdcpError(
                "INVALID_STATE",
                f"The ad server cannot {action} an order that is {order.status}.",
                details={"ad_server": "mock", "status": order.status},
            )
        order.status = target
        self._save_order(external_order_id)

    @_changes
    async def line_action(
        self, external_order_id: str, external_line_id: str, action: LineAction
    ) -> None:
        self._maybe_fail(f"line_{action}")
        order = self._order(external_order_id)
        line = order.lines.get(external_line_id)
        if line is None:
            raise AdcpError("REFERENCE_NOT_FOUND", f"Line '{external_line_id}' not found.")
        line.status = "paused" if action == "pause" else "ready"
        self._save_order(external_order_id)

    @_changes
    async def upload_creative(self, spec: CreativeSpec) -> str:
        self._maybe_fail("upload_creative")
        creative_id = "mock_cr_" + hashlib.sha256(spec.creative_id.encode()).hexdigest()[:12]
        self.creatives[creative_id] = spec
        self._save_creative(creative_id)
        return creative_id

    @_changes
    async def assign_creative(
        self, external_order_id: str, external_line_id: str, external_creative_id: str
    ) -> None:
        self._maybe_fail("assign_creative")
        order = self._order(external_order_id)
        line = order.lines.get(external_line_id)
        if line is None or external_creative_id not in self.creatives:
            raise AdcpError("REFERENCE_NOT_FOUND", "Line or creative not found on ad server.")
        line.creatives.add(external_creative_id)
        self._save_order(external_order_id)

    async def get_delivery(
        self, external_order_id: str, start: date, end: date
    ) -> list[DeliveryRow]:
        """Even delivery of each line's budget across its flight, for the days that have
        passed while the order was delivering. The simulator in core supersedes this
        for mock tenants; this keeps the adapter contract whole."""
        order = self._order(external_order_id)
        if order.status not in ("delivering", "paused", "archived"):
            return []
        today = datetime.now(UTC).date()
        rows: list[DeliveryRow] = []
        for line_id, line in order.lines.items():
            spec = line.spec
            days = max((spec.end.date() - spec.start.date()).days, 1)
            daily_spend = spec.budget / days
            daily_imps = int(daily_spend / spec.rate * 1000) if spec.rate else 0
            day = max(start, spec.start.date())
            while day <= min(end, spec.end.date(), today - timedelta(days=1)):
                rows.append(DeliveryRow(line_id, day, daily_imps, 0, 0, round(daily_spend, 2)))
                day += timedelta(days=1)
        return rows

    async def find_line(self, external_order_id: str, package_id: str) -> str | None:
        self._refresh()
        order = self.orders.get(external_order_id)
        if order is None:
            return None
        found = [lid for lid, line in order.lines.items() if line.spec.package_id == package_id]
        return found[-1] if found else None

    async def find_order(self, media_buy_id: str, name: str) -> str | None:
        self._refresh()
        order_id = _order_id(media_buy_id)
        return order_id if order_id in self.orders else None

    async def sync_orders(self, external_order_ids: list[str]) -> list[ExternalOrderState]:
        self._refresh()
        return [
            ExternalOrderState(
                oid,
                self.orders[oid].status,
                {lid: line.status for lid, line in self.orders[oid].lines.items()},
            )
            for oid in external_order_ids
            if oid in self.orders
        ]


def _order_id(media_buy_id: str) -> str:
    """One order per media buy, its id derived from the buy's."""
    return "mock_order_" + hashlib.sha256(media_buy_id.encode()).hexdigest()[:12]


def load_state(state_file: Path) -> tuple[dict[str, _Order], dict[str, CreativeSpec]]:
    """What the mock ad server behind ``state_file`` holds: (orders, creatives). For
    tests and operators looking at the "ad server" side."""
    adapter = MockAdapter(state_file=state_file)
    try:
        return adapter.orders, adapter.creatives
    finally:
        adapter.close()


def store_order(state_file: Path, order_id: str, order: _Order) -> None:
    """Change an order as the ad server's own UI would (seen by running servers)."""
    adapter = MockAdapter(state_file=state_file)
    try:
        adapter.orders[order_id] = order
        adapter._save_order(order_id)
    finally:
        adapter.close()


def _import_snapshot(state_file: Path, journal: Journal) -> None:
    """Carry a state file of the earlier whole-snapshot format into the journal, once
    (under the journal's lock: a second server starting meanwhile finds it done)."""
    if not state_file.exists():
        return
    with journal.locked():
        if not state_file.exists() or journal.entries:
            return
        # Our own file, written by an earlier version of this adapter.
        with state_file.open("rb") as fh:
            orders, creatives = pickle.load(fh)  # noqa: S301
        for order_id, order in orders.items():
            journal.put("order", order_id, order)
        for creative_id, spec in creatives.items():
            journal.put("creative", creative_id, spec)
        state_file.rename(state_file.with_suffix(".state.imported"))
