"""A Kevel tenant's adapter configuration."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from adcp_agent_adapters._http import HttpAdapterConfig

KEVEL_API = "https://api.kevel.co/v1"


class KevelConfig(HttpAdapterConfig):
    """``adapter_config`` for ``ad_server: kevel``. Example::

    {"network_id": 23, "api_key_env": "KEVEL_API_KEY", "default_priority_id": 101}
    """

    network_id: int = Field(gt=0, description="The Kevel network the API key belongs to.")
    base_url: str = Field(default=KEVEL_API, description="Kevel Management API root.")
    default_priority_id: int | None = Field(
        default=None, gt=0, description="Priority for flights whose product names none."
    )
    default_channel_id: int | None = Field(
        default=None,
        gt=0,
        description="Channel whose priorities are searched when neither the product nor "
        "default_priority_id names a priority.",
    )
    ad_type_ids: dict[str, int] = Field(
        default_factory=dict,
        description="Kevel AdTypeId per AdCP format_id (or 'WIDTHxHEIGHT'); without an "
        "entry, the network's ad types are matched by size.",
    )
    tags_from_signals: list[str] = Field(
        default_factory=list,
        description="Targeting key-value names whose values go into the flight's Kevel "
        "Keywords (one per line: any match) instead of CustomTargeting.",
    )
    completion_event_id: int | None = Field(
        default=None,
        gt=0,
        description="Kevel custom event id that counts video/audio completions in reports.",
    )
    forecast_mode: Literal["api", "daily_capacity"] = Field(
        default="api",
        description="'api' asks Kevel Forecast (an add-on); 'daily_capacity' computes from "
        "the product's inventory.daily_impressions.",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http(s) URL")
        return value.rstrip("/")
