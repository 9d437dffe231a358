"""The mock ad server: a deterministic in-process stand-in for a real one.

Its capacity model reads each product's ``inventory`` block (``daily_impressions`` and
``fill_rate``), so forecasts depend on the flight length and on what is already booked.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from adcp_agent.adapter_protocol import Forecast, ForecastRequest, InventoryItem


class MockConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    network_name: str = Field(default="Mock Ad Server", max_length=200)
    fill_rate: float = Field(default=1.0, gt=0, le=1, description="Share of inventory sold.")


class MockAdapter:
    name: ClassVar[str] = "mock"
    config_model: ClassVar[type[BaseModel]] = MockConfig

    def __init__(self, config: MockConfig | None = None) -> None:
        self.config = config or MockConfig()

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
