"""The ad-server adapter contract and the registry that loads adapters by name.

Adapters are plugins: each is registered under the ``adcp_agent.adapters`` entry-point
group and loaded only when a tenant whose ``ad_server`` names it needs one. Core never
imports a concrete adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

from adcp_agent.errors import AdcpError

ENTRY_POINT_GROUP = "adcp_agent.adapters"


@dataclass(frozen=True)
class InventoryItem:
    """One placement the ad server knows (ad unit, zone, station...)."""

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


@dataclass(frozen=True)
class Forecast:
    available_impressions: int
    capacity_impressions: int


@runtime_checkable
class AdServerAdapter(Protocol):
    """What every ad server integration provides. Every call is async; adapters that
    wrap blocking SDKs run them in a worker thread with a timeout."""

    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    async def health(self) -> bool: ...

    async def sync_inventory(self) -> list[InventoryItem]: ...

    async def forecast(self, request: ForecastRequest) -> Forecast: ...


class AdapterRegistry:
    """Adapter classes by name, discovered from entry points (or registered directly,
    which tests use for fakes)."""

    def __init__(self) -> None:
        self._classes: dict[str, type[AdServerAdapter]] = {}
        self._loaded_entry_points = False

    def register(self, name: str, cls: type[AdServerAdapter]) -> None:
        self._classes[name] = cls

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            self._classes.setdefault(ep.name, _LazyClass(ep))  # type: ignore[arg-type]
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

    def create(self, name: str, config: dict[str, Any]) -> AdServerAdapter:
        cls = self.adapter_class(name)
        validated = self.validate_config(name, config)
        return cls(validated)  # type: ignore[call-arg]


class _LazyClass:
    def __init__(self, ep: Any) -> None:
        self._ep = ep

    def load(self) -> type[AdServerAdapter]:
        return self._ep.load()
