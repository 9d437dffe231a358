"""The ad-server adapter contract and the registry that loads adapters by name.

Adapters are plugins: each is registered under the ``adcp_agent.adapters`` entry-point
group and loaded only when a tenant whose ``ad_server`` names it needs one. Core never
imports a concrete adapter.

Mapping, for every ad server: a media buy is an *order* (GAM Order, Kevel Campaign,
Triton campaign); each package is a *line* (GAM LineItem, Kevel Flight, Triton flight);
a creative is uploaded once and *assigned* to lines. All identifiers the ad server
returns are kept by core and passed back on later calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

from adcp_agent.errors import AdcpError

ENTRY_POINT_GROUP = "adcp_agent.adapters"


@dataclass(frozen=True)
class InventoryItem:
    """One placement the ad server knows (ad unit, placement, site, zone, station...)."""

    item_id: str
    name: str
    kind: str
    parent_id: str | None = None


@dataclass(frozen=True)
class ForecastRequest:
    product_id: str
    inventory: dict[str, Any]
    start: datetime
    end: datetime
    targeting: dict[str, Any] = field(default_factory=dict)
    reserved_impressions: int = 0
    implementation_config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Forecast:
    available_impressions: int
    capacity_impressions: int


@dataclass(frozen=True)
class DaypartWindow:
    """AdCP's daypart target: ``days`` (monday…sunday), hours ``start_hour`` (inclusive,
    0-23) to ``end_hour`` (exclusive, 1-24), in the publisher's time zone."""

    days: tuple[str, ...]
    start_hour: int
    end_hour: int


@dataclass(frozen=True)
class Targeting:
    """Targeting normalised from the AdCP overlay; adapters translate it to their own."""

    geo_countries: tuple[str, ...] = ()
    geo_countries_exclude: tuple[str, ...] = ()
    geo_regions: tuple[str, ...] = ()
    geo_metros: tuple[str, ...] = ()
    device_types: tuple[str, ...] = ()
    geo_regions_exclude: tuple[str, ...] = ()
    geo_metros_exclude: tuple[str, ...] = ()
    device_types_exclude: tuple[str, ...] = ()
    device_platforms: tuple[str, ...] = ()  # AdCP device_platform: ios, android, roku_os…
    postal_codes: tuple[str, ...] = ()  # "US:10001", "GB:SW1A" (services.postal_areas)
    postal_codes_exclude: tuple[str, ...] = ()
    # Activated signals as key-values: {"adcp_seg": ("auto_intenders", ...)}
    key_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dayparts: tuple[str, ...] = ()  # named dayparts (Triton's stations)
    daypart_windows: tuple[DaypartWindow, ...] = ()  # AdCP daypart_targets
    frequency_cap: dict[str, Any] | None = None


@dataclass(frozen=True)
class LineSpec:
    """One package as the ad server should book it."""

    package_id: str
    product_id: str
    name: str
    guaranteed: bool
    pricing_model: str  # cpm | vcpm | cpc | cpcv | flat_rate
    rate: float  # price per unit (fixed price, or bid for auctions)
    currency: str
    budget: float
    impressions_goal: int | None
    start: datetime
    end: datetime
    pacing: Literal["even", "asap", "front_loaded"]
    targeting: Targeting
    format_ids: tuple[str, ...]
    implementation_config: dict[str, Any]  # the product's adapter-specific settings


@dataclass(frozen=True)
class OrderSpec:
    media_buy_id: str
    name: str
    advertiser_name: str
    # The principal's mapping on this ad server (e.g. {"gam_advertiser_id": "123"}).
    advertiser_mapping: dict[str, Any]
    start: datetime
    end: datetime
    total_budget: float
    currency: str
    po_number: str | None
    lines: tuple[LineSpec, ...]


@dataclass(frozen=True)
class OrderResult:
    external_order_id: str
    external_line_ids: dict[str, str]  # package_id -> ad server line id


@dataclass(frozen=True)
class LineChange:
    """A patch to one booked line; None means unchanged."""

    budget: float | None = None
    impressions_goal: int | None = None
    rate: float | None = None
    start: datetime | None = None  # only before the line has started
    end: datetime | None = None
    targeting: Targeting | None = None
    pacing: Literal["even", "asap", "front_loaded"] | None = None
    daily_budget: float | None = None
    # Bid multipliers by device type in percent ({"mobile": -20.0}); auction lines only.
    # Adapters whose ad server has no such control raise UNSUPPORTED_FEATURE.
    device_bid_adjustments: dict[str, float] | None = None


OrderAction = Literal["activate", "approve", "pause", "resume", "archive", "cancel"]
LineAction = Literal["pause", "resume"]


@dataclass(frozen=True)
class CreativeSpec:
    creative_id: str
    name: str
    format_id: str
    kind: Literal["display", "video", "audio"]
    asset_url: str | None
    click_url: str | None
    width: int | None
    height: int | None
    duration_s: float | None
    advertiser_mapping: dict[str, Any]
    snippet: str | None = None  # HTML/VAST when the creative is a tag


@dataclass(frozen=True)
class DeliveryRow:
    external_line_id: str
    day: date
    impressions: int
    clicks: int
    completions: int
    spend: float


@dataclass(frozen=True)
class ExternalOrderState:
    external_order_id: str
    status: str  # the ad server's own status word
    line_statuses: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class AdServerAdapter(Protocol):
    """What every ad server integration provides. Every call is async; adapters that
    wrap blocking SDKs run them in a worker thread with a timeout. Failures raise
    ``AdcpError`` (ad-server reason in ``details``); transient ones with
    ``recovery="transient"``."""

    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    async def health(self) -> bool: ...

    async def sync_inventory(self) -> list[InventoryItem]: ...

    async def forecast(self, request: ForecastRequest) -> Forecast: ...

    async def create_order(self, spec: OrderSpec) -> OrderResult: ...

    async def update_line(
        self, external_order_id: str, external_line_id: str, change: LineChange
    ) -> None: ...

    async def add_line(self, external_order_id: str, line: LineSpec) -> str: ...

    async def order_action(self, external_order_id: str, action: OrderAction) -> None: ...

    async def line_action(
        self, external_order_id: str, external_line_id: str, action: LineAction
    ) -> None: ...

    async def upload_creative(self, spec: CreativeSpec) -> str: ...

    async def assign_creative(
        self, external_order_id: str, external_line_id: str, external_creative_id: str
    ) -> None: ...

    async def get_delivery(
        self, external_order_id: str, start: date, end: date
    ) -> list[DeliveryRow]: ...

    async def sync_orders(self, external_order_ids: list[str]) -> list[ExternalOrderState]: ...


OrderFinder = Callable[[str, str], Awaitable[str | None]]


def order_finder(adapter: AdServerAdapter) -> OrderFinder | None:
    """The adapter's optional ``find_order(media_buy_id, name)``: the external id of
    the order ``create_order`` made for that media buy (``name`` as in its OrderSpec),
    or None if it made none. With it, a booking interrupted after the ad server took
    it is cancelled there (services.interrupted); without it, ad ops are told which
    order to look for."""
    return getattr(adapter, "find_order", None)


LineFinder = Callable[[str, str], Awaitable[str | None]]


def line_finder(adapter: AdServerAdapter) -> LineFinder | None:
    """The adapter's optional ``find_line(external_order_id, package_id)``: the external
    id of the line ``add_line`` made in that order for that package, or None. With it, a
    line an interrupted update added is paused at the ad server (services.interrupted);
    without it, ad ops are told which line to look for."""
    return getattr(adapter, "find_line", None)


def order_name(account_name: str, media_buy_id: str) -> str:
    """The ``OrderSpec.name`` of a media buy's order."""
    return f"{account_name} {media_buy_id}"


def orders_survive_power_loss(adapter: AdServerAdapter) -> bool:
    """Whether what the adapter books outlives a power failure (a remote ad server's
    orders do; the default). An adapter keeping its orders where a power failure can
    lose them (the mock ad server's unsynced journal) declares
    ``orders_survive_power_loss = False``: the rows that record an order before it is
    placed then need not reach the disk first either."""
    return bool(getattr(adapter, "orders_survive_power_loss", True))


def orders_are_local(adapter: AdServerAdapter) -> bool:
    """Whether the adapter's orders live in this server's own files and its calls return
    at once, touching nothing outside it (the mock ad server; not the default). Such an
    adapter is called inside the booking's one database transaction (services.booking):
    no provisional rows committed first, no second commit. A server killed between the
    adapter's change and that commit leaves the adapter an order that no buy names;
    nothing reads it (avails come from the buys), and the buyer's retry books afresh."""
    return bool(getattr(adapter, "orders_are_local", False))


class AdapterRegistry:
    """Adapter classes by name, discovered from entry points (or registered directly,
    which tests use for fakes)."""

    def __init__(self) -> None:
        self._classes: dict[str, Any] = {}
        self._loaded_entry_points = False

    def register(self, name: str, cls: type[AdServerAdapter]) -> None:
        self._classes[name] = cls

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            self._classes.setdefault(ep.name, _LazyClass(ep))
        self._loaded_entry_points = True

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._classes)

    def adapter_class(self, name: str) -> type[AdServerAdapter]:
        self._load_entry_points()
        cls = self._classes.get(name)
        if cls is None:
            raise AdcpError(
                "CONFIGURATION_ERROR",
                f"Ad server '{name}' has no installed adapter.",
                field="ad_server",
                suggestion=f"Use one of: {', '.join(self.names())}.",
            )
        if isinstance(cls, _LazyClass):
            cls = cls.load()
            self._classes[name] = cls
        return cls

    def validate_config(self, name: str, config: dict[str, Any]) -> BaseModel:
        cls = self.adapter_class(name)
        try:
            return cls.config_model.model_validate(config)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise AdcpError(
                "VALIDATION_ERROR",
                f"Invalid {name} adapter config: {first['msg']}.",
                field=f"adapter_config.{loc}" if loc else "adapter_config",
            ) from None

    def create(
        self, name: str, config: dict[str, Any], *, state_file: Path | None = None
    ) -> AdServerAdapter:
        """Instantiate an adapter. Adapters that keep local state (the mock ad server)
        declare ``wants_state_file = True`` and get a file under the data dir."""
        cls = self.adapter_class(name)
        validated = self.validate_config(name, config)
        if getattr(cls, "wants_state_file", False):
            return cls(validated, state_file=state_file)  # type: ignore[call-arg]
        return cls(validated)  # type: ignore[call-arg]


class _LazyClass:
    def __init__(self, ep: Any) -> None:
        self._ep = ep

    def load(self) -> type[AdServerAdapter]:
        return self._ep.load()
