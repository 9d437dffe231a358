"""Products, creative formats and authorized properties of a tenant, and brief ranking."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.engine import Database
from adcp_agent.db.models import AuthorizedProperty, CreativeFormat, Product, Signal
from adcp_agent.services.identity import Caller
from adcp_agent.services.ranking import Document, bm25_rank


@dataclass(frozen=True)
class ProductQuery:
    brief: str | None = None
    delivery_type: str | None = None
    channels: Sequence[str] = ()
    format_ids: Sequence[str] = ()
    format_kinds: Sequence[str] = ()
    countries: Sequence[str] = ()
    budget: float | None = None
    start_date: date | None = None
    end_date: date | None = None
    product_ids: Sequence[str] = ()
    is_fixed_price: bool | None = None
    currencies: Sequence[str] = ()
    regions: Sequence[str] = ()  # ISO 3166-2: products serving each region's country
    geo_levels: Sequence[str] = ()  # targeting levels a product must offer (country, ...)
    exclusivity: str | None = None  # none | category | exclusive (ours are all "none")


@dataclass(frozen=True)
class RankedProduct:
    product: Product
    score: float
    relevance: str
    fit: list[str] = field(default_factory=list)


# AdCP geo targeting levels and the capability a product lists for each (a level with
# none — postal areas — is offered by no product here).
GEO_CAPABILITY = {"country": "geo_country", "region": "geo_region", "metro": "geo_metro"}


def min_spend(product: Product) -> float:
    values = [float(p["min_spend"]) for p in product.pricing_options if p.get("min_spend")]
    return min(values) if values else 0.0


def lead_days(product: Product) -> int:
    return int(product.inventory.get("min_lead_days", 0))


def _passes(
    product: Product, q: ProductQuery, formats: dict[str, CreativeFormat], today: date
) -> list[str] | None:
    """Why the product fits the filters, or None when a filter excludes it."""
    fit: list[str] = []
    if q.product_ids and product.product_id not in q.product_ids:
        return None
    if q.delivery_type:
        if product.delivery_type != q.delivery_type:
            return None
        fit.append(f"delivery {q.delivery_type}")
    if q.channels:
        hit = sorted(set(q.channels) & set(product.channels))
        if not hit:
            return None
        fit.append("channel " + ", ".join(hit))
    if q.is_fixed_price is not None:
        fixed = any(o.get("fixed_price") is not None for o in product.pricing_options)
        if fixed != q.is_fixed_price:
            return None
        fit.append("fixed price" if fixed else "auction priced")
    currencies = {o.get("currency") for o in product.pricing_options}
    if q.currencies and not currencies & set(q.currencies):
        return None
    if q.format_ids:
        if not set(q.format_ids) & set(product.format_ids):
            return None
        fit.append("accepts the requested formats")
    if q.format_kinds:
        kinds = {formats[f].kind for f in product.format_ids if f in formats}
        if not set(q.format_kinds) & kinds:
            return None
    if q.countries and product.countries:
        hit = sorted({c.upper() for c in q.countries} & set(product.countries))
        if not hit:
            return None
        fit.append("serves " + ", ".join(hit))
    if q.regions and product.countries:
        served = sorted({r for r in q.regions if r[:2] in product.countries})
        if not served:
            return None
        fit.append("covers " + ", ".join(served))
    if q.geo_levels:
        offered = {GEO_CAPABILITY.get(level) for level in q.geo_levels}
        if not offered <= set(product.targeting):
            return None
        fit.append("targets by " + ", ".join(q.geo_levels))
    if q.exclusivity not in (None, "none"):
        return None  # no product here is sold as sole or category sponsorship
    if q.budget is not None:
        floor = min_spend(product)
        if floor > q.budget:
            return None
        if floor:
            fit.append(f"budget clears the {floor:,.0f} minimum")
    if q.start_date is not None:
        earliest = today + timedelta(days=lead_days(product))
        if q.start_date < earliest:
            return None
    if q.start_date and q.end_date and q.end_date < q.start_date:
        return None
    return fit


# How buyers say each channel, so a brief's words meet the catalog's channel codes.
CHANNEL_WORDS = {
    "ctv": "ctv connected tv television video streaming",
    "olv": "online video",
    "display": "display banner",
    "streaming_audio": "streaming audio radio",
    "podcast": "podcast audio",
}


def _document(product: Product, formats: dict[str, CreativeFormat]) -> Document:
    kinds = sorted({formats[f].kind for f in product.format_ids if f in formats})
    return Document(
        doc_id=product.product_id,
        fields={
            "name": product.name,
            "keywords": " ".join(product.keywords),
            "channels": " ".join(CHANNEL_WORDS.get(c, c) for c in product.channels)
            + " "
            + " ".join(kinds),
            "description": product.description,
        },
    )


def _explain(matched: dict[str, list[str]], fit: list[str], brief: str | None) -> str:
    parts: list[str] = []
    if brief:
        terms = sorted({t for ts in matched.values() for t in ts})
        if terms:
            where = ", ".join(sorted(matched))
            parts.append(f"Brief terms {', '.join(repr(t) for t in terms)} match its {where}")
        else:
            parts.append("No brief terms match directly; included because it fits the filters")
    if fit:
        parts.append("fits: " + "; ".join(fit))
    return ". ".join(parts) + "." if parts else "Matches the request."


@dataclass(frozen=True)
class Catalog:
    """One tenant's catalog as read at ``version``: every product (public or not) by
    id, formats, properties and signals by id, and each product's ranking document.
    Shared by concurrent requests: read-only."""

    version: int | None
    products: tuple[Product, ...]
    formats: dict[str, CreativeFormat]
    properties: dict[str, AuthorizedProperty]
    signals: dict[str, Signal]  # by id, in id order
    documents: dict[str, Document]
    products_by_id: dict[str, Product]
    signal_documents: dict[str, Document]


_CACHE_KEY = "catalog"
_CACHE_TENANTS = 256  # catalogs kept per process; the least recently used goes first


async def _load(db: Database, tenant_id: str, version: int | None) -> Catalog:
    async with db.reading() as session:
        products = tuple(
            (
                await session.exec(
                    select(Product)
                    .where(Product.tenant_id == tenant_id)
                    .order_by(col(Product.product_id))
                )
            ).all()
        )
        formats = (
            await session.exec(
                select(CreativeFormat)
                .where(CreativeFormat.tenant_id == tenant_id)
                .order_by(col(CreativeFormat.format_id))
            )
        ).all()
        properties = (
            await session.exec(
                select(AuthorizedProperty)
                .where(AuthorizedProperty.tenant_id == tenant_id)
                .order_by(col(AuthorizedProperty.property_id))
            )
        ).all()
        signals = (
            await session.exec(
                select(Signal).where(Signal.tenant_id == tenant_id).order_by(col(Signal.signal_id))
            )
        ).all()
    by_format = {f.format_id: f for f in formats}
    return Catalog(
        version=version,
        products=products,
        formats=by_format,
        properties={p.property_id: p for p in properties},
        signals={s.signal_id: s for s in signals},
        documents={p.product_id: _document(p, by_format) for p in products},
        products_by_id={p.product_id: p for p in products},
        signal_documents={s.signal_id: _signal_document(s) for s in signals},
    )


def _signal_document(signal: Signal) -> Document:
    return Document(
        signal.signal_id,
        {
            "name": signal.name,
            "keywords": " ".join(signal.keywords) + " " + signal.signal_type,
            "description": signal.description,
        },
    )


async def tenant_catalog(db: Database, caller: Caller) -> Catalog:
    """The caller's tenant catalog, from the in-process cache while the tenant's
    ``catalog_version`` (read with the caller's token, kept by database triggers on
    every catalog write) is the one it was loaded at. For reads and validation; a
    transaction that must see the rows it locks reads them itself."""
    cache: OrderedDict[str, Catalog] = db.cache.setdefault(_CACHE_KEY, OrderedDict())
    version = caller.catalog_version
    hit = cache.get(caller.tenant_id)
    if hit is not None and version is not None and hit.version == version:
        cache.move_to_end(caller.tenant_id)
        return hit
    # Tagged with the version read *before* loading: the rows are at least that new.
    loaded = await _load(db, caller.tenant_id, version)
    if version is not None:
        cache[caller.tenant_id] = loaded
        cache.move_to_end(caller.tenant_id)
        while len(cache) > _CACHE_TENANTS:
            cache.popitem(last=False)
    return loaded


async def search_products(
    db: Database, caller: Caller, q: ProductQuery, *, now: datetime | None = None
) -> list[RankedProduct]:
    """Products the caller may see that pass the filters, best match to the brief first.
    Anonymous callers see only products the publisher marked public."""
    today = (now or datetime.now(UTC)).date()
    cat = await tenant_catalog(db, caller)
    kept: list[tuple[Product, list[str]]] = []
    for product in cat.products:
        if not caller.authenticated and not product.is_public:
            continue
        fit = _passes(product, q, cat.formats, today)
        if fit is not None:
            kept.append((product, fit))
    scores = bm25_rank(q.brief or "", [cat.documents[p.product_id] for p, _ in kept])
    ranked = [
        RankedProduct(p, s.score, _explain(s.matched, fit, q.brief), fit)
        for (p, fit), s in zip(kept, scores, strict=True)
    ]
    if q.brief:
        # A brief with any direct hit drops products that match nothing in it.
        if any(r.score > 0 for r in ranked):
            ranked = [r for r in ranked if r.score > 0]
        ranked.sort(key=lambda r: (-r.score, r.product.product_id))
    return ranked


async def list_formats(db: Database, caller: Caller) -> list[CreativeFormat]:
    return list((await tenant_catalog(db, caller)).formats.values())


async def list_properties(db: Database, caller: Caller) -> list[AuthorizedProperty]:
    return list((await tenant_catalog(db, caller)).properties.values())


async def products_by_id(
    session: AsyncSession, tenant_id: str, product_ids: Iterable[str]
) -> dict[str, Product]:
    """The tenant's products with these ids, by id (missing ids are simply absent)."""
    rows = await session.exec(
        select(Product).where(
            Product.tenant_id == tenant_id,
            col(Product.product_id).in_(list(dict.fromkeys(product_ids))),
        )
    )
    return {p.product_id: p for p in rows.all()}
