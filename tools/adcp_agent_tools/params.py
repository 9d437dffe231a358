"""Argument models shared by tools. Unknown keys inside these objects are tolerated
(newer AdCP minors add fields); the fields we act on are validated strictly."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adcp_agent.errors import AdcpError


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class FormatRef(_Open):
    agent_url: str | None = None
    id: str = Field(min_length=1, description="Format id, e.g. 'display_300x250'.")


class BudgetRange(_Open):
    min: float | None = Field(default=None, ge=0)
    max: float | None = Field(default=None, ge=0)
    currency: str | None = None


class Metro(_Open):
    system: Literal["nielsen_dma", "uk_itl1", "uk_itl2", "eurostat_nuts2", "custom"]
    code: str = Field(min_length=1, max_length=20)


class GeoLevel(_Open):
    level: Literal["country", "region", "metro", "postal_area"]
    system: str | None = None
    country: str | None = None


class ProductFilters(_Open):
    delivery_type: Literal["guaranteed", "non_guaranteed"] | None = None
    is_fixed_price: bool | None = None
    pricing_currencies: list[Annotated[str, Field(pattern=r"^[A-Z]{3}$")]] | None = None
    format_ids: list[FormatRef] | None = None
    format_types: list[Literal["display", "video", "audio"]] | None = None
    start_date: date | None = None
    end_date: date | None = None
    budget_range: BudgetRange | None = None
    countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] | None = None
    regions: list[Annotated[str, Field(pattern=r"^[A-Z]{2}-[A-Z0-9]+$")]] | None = Field(
        default=None, min_length=1, max_length=500
    )
    metros: list[Metro] | None = Field(default=None, min_length=1, max_length=500)
    required_geo_targeting: list[GeoLevel] | None = Field(default=None, max_length=20)
    required_features: dict[str, bool] | None = None
    exclusivity: Literal["none", "category", "exclusive"] | None = None
    channels: list[str] | None = None


SUPPORTED_FILTERS = frozenset(ProductFilters.model_fields)


class Pagination(_Open):
    max_results: int | None = Field(default=None, ge=1, le=100)
    cursor: str | None = None


class BrandRef(_Open):
    domain: str | None = None
    brand_id: str | None = None


class AccountRef(_Open):
    account_id: str | None = None
    brand: BrandRef | None = None
    operator: str | None = None
    sandbox: bool | None = None


class Destination(_Open):
    type: Literal["agent", "platform"]
    agent_url: str | None = None
    platform: str | None = None
    account: str | None = None


IdempotencyKey = Annotated[
    str | None,
    Field(
        pattern=r"^[A-Za-z0-9_.:-]{16,255}$",
        description="Client-chosen key (16-255 chars): a retry with the same key returns the "
        "original result instead of acting twice.",
    ),
]

GovernanceContext = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=4096,
        pattern=r"^[\x20-\x7E]+$",
        description="The governance context your governance agent issued for this action "
        "(accounts with a governance agent, see sync_governance).",
    ),
]
PlanId = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=255,
        description="The governance plan this buy is made under: required on an account "
        "with a governance agent (sync_governance), which checks the buy against it.",
    ),
]


def dump(model: BaseModel | None) -> dict[str, Any] | None:
    return model.model_dump(mode="json", exclude_none=True) if model is not None else None


class Money(BaseModel):
    """AdCP 3.1's {amount, currency} (create_media_buy's total_budget)."""

    model_config = ConfigDict(extra="forbid")

    amount: float = Field(ge=0, allow_inf_nan=False)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


def check_names(values: Sequence[str], allowed: Collection[str], field: str) -> None:
    """Each of ``values`` (the list argument ``field``) is one of ``allowed``, or a
    VALIDATION_ERROR naming the first that is not and listing the valid ones."""
    for i, v in enumerate(values):
        if v not in allowed:
            raise AdcpError(
                "VALIDATION_ERROR",
                f"Unknown {field[:-1]} '{v}'.",
                field=f"{field}[{i}]",
                suggestion=f"Use: {', '.join(allowed)}.",
            )
