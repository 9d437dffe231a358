"""A Triton Digital tenant's adapter configuration: credentials plus every endpoint of the
assumed REST contract (see ``adcp_agent_adapters.triton``), so a publisher whose real API
differs in paths or auth header adjusts configuration, not code."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adcp_agent_adapters._http import HttpAdapterConfig, path_placeholders

_C, _F = "campaign_id", "flight_id"


class TritonPaths(BaseModel):
    """Path templates under ``base_url``; ``{campaign_id}``/``{flight_id}`` are filled in."""

    model_config = ConfigDict(extra="forbid")

    health: str = "/stations"
    stations: str = "/stations"
    campaigns: str = "/campaigns"
    campaign: str = "/campaigns/{campaign_id}"
    flights: str = "/campaigns/{campaign_id}/flights"
    flight: str = "/campaigns/{campaign_id}/flights/{flight_id}"
    creatives: str = "/creatives"
    flight_creatives: str = "/campaigns/{campaign_id}/flights/{flight_id}/creatives"
    forecast: str = "/forecasts"
    delivery: str = "/campaigns/{campaign_id}/delivery"

    @model_validator(mode="after")
    def _placeholders(self) -> Self:
        needs = {"campaign": {_C}, "flights": {_C}, "delivery": {_C}, "flight": {_C, _F},
                 "flight_creatives": {_C, _F}}  # fmt: skip
        for name, template in self.model_dump().items():
            if not template.startswith("/"):
                raise ValueError(f"paths.{name} must start with '/'")
            found, wanted = path_placeholders(template), needs.get(name, set())
            if found != wanted:
                raise ValueError(
                    f"paths.{name} must use exactly {sorted(wanted) or 'no placeholders'}"
                )
        return self


class TritonConfig(HttpAdapterConfig):
    """``adapter_config`` for ``ad_server: triton_digital``. Example::

    {"base_url": "https://booking.tritondigital.example/v1",
     "api_key_env": "TRITON_API_KEY", "default_station_ids": ["WXYZ-FM"]}
    """

    base_url: str = Field(description="Root of the publisher's Triton booking API.")
    auth_header: str = Field(default="Authorization", pattern=r"^[A-Za-z0-9-]+$")
    auth_scheme: str = Field(
        default="Bearer", description="Prefix of the header value; empty sends the bare key."
    )
    extra_headers: dict[str, str] = Field(default_factory=dict)
    paths: TritonPaths = Field(default_factory=TritonPaths)
    default_station_ids: list[str] = Field(
        default_factory=list, description="Stations for products that name none."
    )
    forecast_mode: Literal["api", "daily_capacity"] = Field(
        default="api",
        description="'api' POSTs to paths.forecast; 'daily_capacity' computes from the "
        "product's inventory.daily_impressions.",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http(s) URL")
        return value.rstrip("/")
