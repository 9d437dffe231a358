"""Publisher-side catalog writes: products, formats, properties and signals, validated
against each other (a product may only reference formats and properties that exist)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.engine import Database
from adcp_agent.db.models import AuthorizedProperty, CreativeFormat, Product, Signal
from adcp_agent.errors import AdcpError
from adcp_agent.services import audit

# AdCP 3.1 channel enum (enums/channels.json).
CHANNELS = (
    "display",
    "olv",
    "social",
    "search",
    "ctv",
    "linear_tv",
    "radio",
    "streaming_audio",
    "podcast",
    "dooh",
    "ooh",
    "print",
    "cinema",
    "email",
    "gaming",
    "retail_media",
    "influencer",
    "affiliate",
    "product_placement",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PricingOptionIn(_Strict):
    pricing_option_id: str = Field(min_length=1, max_length=64)
    pricing_model: Literal["cpm", "vcpm", "cpc", "cpcv", "flat_rate"] = "cpm"
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    fixed_price: float | None = Field(default=None, gt=0)
    floor_price: float | None = Field(default=None, gt=0)
    min_spend: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_price(self) -> PricingOptionIn:
        if (self.fixed_price is None) == (self.floor_price is None):
            raise ValueError("set exactly one of fixed_price (fixed rate) or floor_price (auction)")
        return self


class ProductIn(_Strict):
    product_id: str = Field(pattern=r"^[a-z0-9_\-]{1,128}$")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1)
    keywords: list[str] = []
    channels: list[Literal[CHANNELS]] = Field(min_length=1)  # type: ignore[valid-type]
    delivery_type: Literal["guaranteed", "non_guaranteed"]
    format_ids: list[str] = Field(min_length=1)
    property_ids: list[str] = Field(min_length=1)
    countries: list[str] = []
    pricing_options: list[PricingOptionIn] = Field(min_length=1)
    targeting: list[str] = []
    inventory: dict[str, Any] = {}
    implementation_config: dict[str, Any] = {}
    is_public: bool = True

    @model_validator(mode="after")
    def _pricing_matches_delivery(self) -> ProductIn:
        for option in self.pricing_options:
            if self.delivery_type == "guaranteed" and option.fixed_price is None:
                raise ValueError("guaranteed products are sold at a fixed_price")
        return self


class FormatIn(_Strict):
    format_id: str = Field(pattern=r"^[a-z0-9_\-]{1,128}$")
    name: str
    description: str = ""
    kind: Literal["display", "video", "audio"]
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    durations_s: list[int] = []
    mime_types: list[str] = []
    max_file_kb: int | None = Field(default=None, gt=0)


# AdCP 3.1 property identifier types (enums/identifier-types.json).
IDENTIFIER_TYPES = (
    "domain",
    "subdomain",
    "network_id",
    "ios_bundle",
    "android_package",
    "apple_app_store_id",
    "google_play_id",
    "roku_store_id",
    "fire_tv_asin",
    "samsung_app_id",
    "apple_tv_bundle",
    "bundle_id",
    "venue_id",
    "screen_id",
    "openooh_venue_type",
    "rss_url",
    "apple_podcast_id",
    "spotify_collection_id",
    "podcast_guid",
    "station_id",
    "facility_id",
)


class PropertyIdentifier(_Strict):
    type: Literal[IDENTIFIER_TYPES]  # type: ignore[valid-type]
    value: str = Field(min_length=1)


class PropertyIn(_Strict):
    property_id: str = Field(pattern=r"^[a-z0-9_]{1,128}$")
    property_type: Literal[
        "website",
        "mobile_app",
        "ctv_app",
        "desktop_app",
        "dooh",
        "podcast",
        "radio",
        "linear_tv",
        "streaming_audio",
    ]
    name: str
    publisher_domain: str
    identifiers: list[PropertyIdentifier] = Field(min_length=1)
    tags: list[str] = []


class SignalIn(_Strict):
    signal_id: str = Field(pattern=r"^[a-z0-9_\-]{1,128}$")
    name: str
    description: str
    signal_type: Literal["audience", "contextual", "geo"]
    keywords: list[str] = []
    reach: int = Field(default=0, ge=0)
    coverage_percentage: float = Field(default=0, ge=0, le=100)
    cpm: float = Field(default=0, ge=0)
    data_provider: str = ""


def _parse(model: type[_Strict], raw: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise AdcpError(
            "VALIDATION_ERROR", f"{where}: {first['msg']}", field=f"{where}.{loc}".rstrip(".")
        ) from None


CatalogRow = CreativeFormat | AuthorizedProperty | Product | Signal


async def _put(
    session: AsyncSession,
    model: type[CatalogRow],
    tenant_id: str,
    key: str,
    data: dict[str, Any],
    upsert: bool,
) -> None:
    existing = None
    if upsert:
        existing = (
            await session.exec(
                select(model).where(
                    model.tenant_id == tenant_id,
                    getattr(model, key) == data[key],
                )
            )
        ).first()
    if existing is None:
        session.add(model(tenant_id=tenant_id, **data))
        return
    for name, value in data.items():
        setattr(existing, name, value)
    session.add(existing)


async def load_catalog(
    db: Database,
    tenant_id: str,
    *,
    formats: Sequence[dict[str, Any]] = (),
    properties: Sequence[dict[str, Any]] = (),
    products: Sequence[dict[str, Any]] = (),
    signals: Sequence[dict[str, Any]] = (),
    actor: str = "admin",
    upsert: bool = False,
) -> dict[str, int]:
    """Insert catalog items in one transaction; all or nothing. With ``upsert`` an item
    whose id exists replaces it in place (sandbox fixtures re-seeded with new values)."""
    fmts = [_parse(FormatIn, f, f"formats[{i}]") for i, f in enumerate(formats)]
    props = [_parse(PropertyIn, p, f"properties[{i}]") for i, p in enumerate(properties)]
    prods = [_parse(ProductIn, p, f"products[{i}]") for i, p in enumerate(products)]
    sigs = [_parse(SignalIn, s, f"signals[{i}]") for i, s in enumerate(signals)]
    async with db.transaction() as session:
        known_formats = {f.format_id for f in fmts} | set(
            (
                await session.exec(
                    select(CreativeFormat.format_id).where(CreativeFormat.tenant_id == tenant_id)
                )
            ).all()
        )
        known_props = {p.property_id for p in props} | set(
            (
                await session.exec(
                    select(AuthorizedProperty.property_id).where(
                        AuthorizedProperty.tenant_id == tenant_id
                    )
                )
            ).all()
        )
        for i, prod in enumerate(prods):
            for fid in prod.format_ids:
                if fid not in known_formats:
                    raise AdcpError(
                        "VALIDATION_ERROR",
                        f"Product '{prod.product_id}' names unknown format '{fid}'.",
                        field=f"products[{i}].format_ids",
                    )
            for pid in prod.property_ids:
                if pid not in known_props:
                    raise AdcpError(
                        "VALIDATION_ERROR",
                        f"Product '{prod.product_id}' names unknown property '{pid}'.",
                        field=f"products[{i}].property_ids",
                    )
        for f in fmts:
            await _put(session, CreativeFormat, tenant_id, "format_id", f.model_dump(), upsert)
        for p in props:
            await _put(
                session, AuthorizedProperty, tenant_id, "property_id", p.model_dump(), upsert
            )
        for prod in prods:
            data = prod.model_dump(mode="json", exclude_none=False)
            data["pricing_options"] = [
                o.model_dump(mode="json", exclude_none=True) for o in prod.pricing_options
            ]
            data["countries"] = [c.upper() for c in prod.countries]
            await _put(session, Product, tenant_id, "product_id", data, upsert)
        for s in sigs:
            await _put(session, Signal, tenant_id, "signal_id", s.model_dump(), upsert)
        counts = {
            "formats": len(fmts),
            "properties": len(props),
            "products": len(prods),
            "signals": len(sigs),
        }
        await audit.record(
            session,
            None,
            "catalog.load",
            actor=actor,
            tenant_id=tenant_id,
            target_type="tenant",
            target_id=tenant_id,
            details=counts,
        )
    return counts
