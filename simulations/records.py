"""What a journey records about its buys, day by day: the raw material of the result JSON,
the fingerprints and the charts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

BuyKind = Literal["guaranteed", "auction"]


@dataclass(frozen=True)
class Flight:
    """The flight every buyer books: whole UTC days, ``start`` inclusive, ``end``
    exclusive. Days are numbered from 1, as the buyer counts them."""

    start: datetime
    days: int

    @classmethod
    def after(cls, now: datetime, lead_days: int, days: int) -> Flight:
        midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
        return cls(midnight + timedelta(days=lead_days), days)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    def day(self, n: int) -> date:
        return (self.start + timedelta(days=n - 1)).date()

    @property
    def last_day(self) -> date:
        return self.day(self.days)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class DayPoint:
    """One flight day of one package, as get_media_buy_delivery told it that evening."""

    day: int
    date: str
    impressions: int
    spend: float
    cum_impressions: int
    cum_spend: float
    pacing_index: float | None
    delivery_status: str | None
    paused: bool


@dataclass
class PackageRun:
    """``key`` is the run-independent name of the package (G1, A1, A2, ...)."""

    key: str
    product_id: str
    pricing_option_id: str
    budget: float
    bid_price: float | None
    signals: list[str]
    format_id: str
    package_id: str = ""
    creative_id: str = ""
    performance_index: float | None = None
    days: list[DayPoint] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    # A package added mid-flight (update_media_buy new_packages): at the end of this
    # flight day, starting then (start_time as the seller answered).
    added_day: int | None = None
    start_time: str | None = None

    def record(self, day: int, on: date, row: dict[str, Any]) -> DayPoint:
        prev_imps = self.days[-1].cum_impressions if self.days else 0
        prev_spend = self.days[-1].cum_spend if self.days else 0.0
        imps, spend = int(row.get("impressions", 0)), float(row.get("spend", 0.0))
        point = DayPoint(
            day=day,
            date=on.isoformat(),
            impressions=imps - prev_imps,
            spend=round(spend - prev_spend, 2),
            cum_impressions=imps,
            cum_spend=round(spend, 2),
            pacing_index=row.get("pacing_index"),
            delivery_status=row.get("delivery_status"),
            paused=bool(row.get("paused")),
        )
        self.days.append(point)
        return point

    def spend_between(self, first: int, last: int) -> float:
        return sum(d.spend for d in self.days if first <= d.day <= last)


@dataclass
class BuyRun:
    kind: BuyKind
    packages: list[PackageRun]
    media_buy_id: str = ""
    task_id: str | None = None
    status: str = ""
    # get_media_buys include_history at the end: (revision, action, actor, summary)
    history: list[dict[str, Any]] = field(default_factory=list)
    revision: int = 0

    @property
    def budget(self) -> float:
        return round(sum(p.budget for p in self.packages), 2)

    @property
    def planned(self) -> list[PackageRun]:
        """The packages booked with the buy (not added mid-flight)."""
        return [p for p in self.packages if p.added_day is None]
