"""Sandbox fixtures (``seed_*``): storyboards pre-populate what they reference by id.

Each fixture goes through the service — and so the validation — a real actor would use:
products, pricing options and formats through ``catalog_admin.load_catalog``, accounts
through ``accounts``, creatives through ``creatives.sync``, buys through
``media_buys.create`` (booked on the mock engine like every sandbox buy). Fixture fields
use AdCP's shapes; what a fixture leaves out gets a sensible sandbox default.

Seeding the same id again converges: catalog fixtures are replaced by the new values,
an existing account, creative or buy keeps its data and takes the fixture's ``status``.
The catalog is shared by every buyer of a tenant, so catalog fixtures need a sandbox
tenant; account, creative and buy fixtures live on sandbox accounts anywhere.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from adcp_agent.db.models import AuthorizedProperty, CreativeFormat, Product
from adcp_agent.db.models_accounts import Account, AccountPrincipal
from adcp_agent.db.models_media import MediaBuy
from adcp_agent.errors import AdcpError
from adcp_agent.services import accounts, catalog_admin, media_buys
from adcp_agent.services import creatives as creative_library
from adcp_agent.services.catalog import lead_days, min_spend
from adcp_agent.services.idempotency import Completion
from adcp_agent.services.sandbox import ControllerError, Scope, tenant_is_sandbox
from adcp_agent.services.sandbox_status import force_media_buy_status, set_creative_status

MAX_ID = 64
DEFAULT_INVENTORY = {"daily_impressions": 1_000_000, "fill_rate": 1.0, "ctr": 0.002,
                     "viewability": 0.7, "completion_rate": 0.8}  # fmt: skip
DEFAULT_TARGETING = ["geo_country", "geo_region", "geo_metro", "device_type", "signals"]
KIND_OF_CHANNEL = {"display": "display", "olv": "video", "ctv": "video", "linear_tv": "video",
                   "radio": "audio", "streaming_audio": "audio", "podcast": "audio"}  # fmt: skip
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
        "video/mp4": "mp4", "audio/mpeg": "mp3", "audio/aac": "aac"}  # fmt: skip
PLACEHOLDER = "https://sandbox.adcp-agent.example"


def _invalid(exc: AdcpError) -> ControllerError:
    where = f" ({exc.field})" if exc.field else ""
    if exc.recovery == "transient":
        return ControllerError("INTERNAL_ERROR", f"{exc.code}: {exc.message}")
    return ControllerError("INVALID_PARAMS", f"{exc.code}{where}: {exc.message}")


def _check_id(value: str, name: str) -> None:
    if not value or len(value) > MAX_ID:
        raise ControllerError("INVALID_PARAMS", f"{name} must be 1-{MAX_ID} characters here.")


def _format_id(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("id")
    return value if isinstance(value, str) else None


def _catalog_tenant(scope: Scope) -> None:
    if not tenant_is_sandbox(scope.tenant):
        raise ControllerError(
            "FORBIDDEN",
            "Catalog fixtures (products, pricing options, formats) need a sandbox tenant: "
            "this tenant's catalog is shared with its production buyers.",
        )


async def _catalog(scope: Scope) -> tuple[list[CreativeFormat], list[str]]:
    async with scope.state.db.session() as session:
        tid = scope.tenant.tenant_id
        formats = list(
            (
                await session.exec(
                    select(CreativeFormat)
                    .where(CreativeFormat.tenant_id == tid)
                    .order_by(CreativeFormat.format_id)
                )
            ).all()
        )
        props = list(
            (
                await session.exec(
                    select(AuthorizedProperty.property_id)
                    .where(AuthorizedProperty.tenant_id == tid)
                    .order_by(AuthorizedProperty.property_id)
                )
            ).all()
        )
    return formats, props


async def _load(scope: Scope, **items: list[dict[str, Any]]) -> None:
    try:
        await catalog_admin.load_catalog(
            scope.state.db, scope.tenant.tenant_id, actor=scope.actor, upsert=True, **items
        )
    except AdcpError as exc:
        raise _invalid(exc) from exc


def pricing_option(raw: dict[str, Any]) -> dict[str, Any]:
    """An AdCP pricing option as the catalog stores it."""
    guidance = raw.get("price_guidance") or {}
    out = {
        "pricing_option_id": raw.get("pricing_option_id"),
        "pricing_model": raw.get("pricing_model", "cpm"),
        "currency": raw.get("currency", "USD"),
        "fixed_price": raw.get("fixed_price"),
        "floor_price": raw.get("floor_price", guidance.get("floor")),
        "min_spend": raw.get("min_spend", raw.get("min_spend_per_package")),
    }
    return {k: v for k, v in out.items() if v is not None}


async def seed_product(scope: Scope, product_id: str, fx: dict[str, Any]) -> str:
    _catalog_tenant(scope)
    formats, props = await _catalog(scope)
    channels = list(fx.get("channels") or ["display"])
    delivery_type = fx.get("delivery_type", "non_guaranteed")
    kinds = {KIND_OF_CHANNEL.get(c) for c in channels}
    format_ids = (
        [f for f in map(_format_id, fx.get("format_ids") or []) if f]
        or [f.format_id for f in formats if f.kind in kinds]
        or [f.format_id for f in formats]
    )
    property_ids = list(fx.get("property_ids") or [])
    for selection in fx.get("publisher_properties") or []:
        property_ids += list(selection.get("property_ids") or [])
    if fx.get("pricing_options"):
        options = [pricing_option(o) for o in fx["pricing_options"]]
    elif delivery_type == "guaranteed":
        options = [{"pricing_option_id": f"{product_id}_cpm", "fixed_price": 10.0}]
    else:
        options = [{"pricing_option_id": f"{product_id}_cpm", "floor_price": 1.0}]
    product = {
        "product_id": product_id,
        "name": fx.get("name") or product_id,
        "description": fx.get("description") or f"Sandbox fixture product {product_id}.",
        "keywords": list(fx.get("keywords") or []),
        "channels": channels,
        "delivery_type": delivery_type,
        "format_ids": format_ids,
        "property_ids": property_ids or props,
        "countries": list(fx.get("countries") or []),
        "pricing_options": options,
        "targeting": list(fx.get("targeting") or DEFAULT_TARGETING),
        "inventory": {**DEFAULT_INVENTORY, **(fx.get("inventory") or {})},
    }
    await _load(scope, products=[product])
    return f"Product {product_id} seeded."


async def seed_pricing_option(
    scope: Scope, product_id: str, pricing_option_id: str, fx: dict[str, Any]
) -> str:
    _catalog_tenant(scope)
    async with scope.state.db.session() as session:
        row = (
            await session.exec(
                select(Product).where(
                    Product.tenant_id == scope.tenant.tenant_id, Product.product_id == product_id
                )
            )
        ).first()
    if row is None:
        raise ControllerError("NOT_FOUND", f"Product '{product_id}' was not found.")
    option = pricing_option({**fx, "pricing_option_id": pricing_option_id})
    options = [o for o in row.pricing_options if o["pricing_option_id"] != pricing_option_id]
    product = row.model_dump(exclude={"id", "tenant_id", "created_at"})
    product["pricing_options"] = [*options, option]
    await _load(scope, products=[product])
    return f"Pricing option {pricing_option_id} seeded on product {product_id}."


async def seed_creative_format(scope: Scope, format_id: str, fx: dict[str, Any]) -> str:
    _catalog_tenant(scope)
    kind = fx.get("kind") or fx.get("type")
    if kind not in ("display", "video", "audio"):
        kind = next((k for k in ("video", "audio") if k in format_id), "display")
    dims = ((fx.get("renders") or [{}])[0] or {}).get("dimensions") or {}
    size = re.search(r"(\d+)x(\d+)", format_id)
    width = fx.get("width") or dims.get("width") or (int(size[1]) if size else None)
    height = fx.get("height") or dims.get("height") or (int(size[2]) if size else None)
    durations = fx.get("durations_s") or (
        [int(fx["duration_ms"]) // 1000] if fx.get("duration_ms") else []
    )
    fmt = {
        "format_id": format_id,
        "name": fx.get("name") or format_id,
        "description": fx.get("description") or "",
        "kind": kind,
        "width": width if kind != "audio" else None,
        "height": height if kind != "audio" else None,
        "durations_s": durations if kind != "display" else [],
        "mime_types": list(fx.get("mime_types") or []),
    }
    await _load(scope, formats=[fmt])
    return f"Creative format {format_id} seeded."


async def seed_account(scope: Scope, account_id: str, fx: dict[str, Any]) -> str:
    _check_id(account_id, "account_id")
    db = scope.state.db
    async with db.session() as session:
        existing = await session.get(Account, account_id)
        linked = await session.get(AccountPrincipal, (account_id, scope.principal_id))
    if existing is not None and (linked is None or not scope.in_sandbox(existing.sandbox)):
        raise ControllerError("INVALID_PARAMS", f"account_id '{account_id}' is already in use.")
    brand = fx.get("brand") or {}
    try:
        if existing is None:
            existing = await accounts.create_account(
                db,
                scope.tenant.tenant_id,
                account_id=account_id,
                name=fx.get("name") or account_id,
                principal_ids=[scope.principal_id],
                advertiser=fx.get("advertiser") or brand.get("domain"),
                brand_domain=brand.get("domain"),
                operator=fx.get("operator"),
                billing=fx.get("billing", "operator"),
                payment_terms=fx.get("payment_terms"),
                currency=fx.get("currency", "USD"),
                sandbox=True,
                actor=scope.actor,
            )
        status = fx.get("status")
        if status and status != existing.status:
            await accounts.set_status(
                db, scope.tenant.tenant_id, account_id, status, actor=scope.actor
            )
    except AdcpError as exc:
        raise _invalid(exc) from exc
    return f"Sandbox account {account_id} seeded."


def placeholder_assets(fmt: CreativeFormat, creative_id: str) -> dict[str, Any]:
    """Assets that satisfy ``fmt`` exactly, for fixtures that only name a format."""
    mime = fmt.mime_types[0] if fmt.mime_types else None
    default_ext = {"display": "png", "video": "mp4", "audio": "mp3"}[fmt.kind]
    url = f"{PLACEHOLDER}/{creative_id}.{_EXT.get(mime or '', default_ext)}"
    seconds = fmt.durations_s[0] if fmt.durations_s else 30
    if fmt.kind == "display":
        return {
            "banner_image": {"asset_type": "image", "url": url,
                             "width": fmt.width or 300, "height": fmt.height or 250},
            "clickthrough_url": {"asset_type": "url", "url_type": "clickthrough",
                                 "url": f"{PLACEHOLDER}/landing"},
        }  # fmt: skip
    if fmt.kind == "video":
        video = {"asset_type": "video", "url": url, "width": fmt.width or 1920,
                 "height": fmt.height or 1080, "duration_ms": seconds * 1000}  # fmt: skip
        return {"video_file": video}
    return {"audio_file": {"asset_type": "audio", "url": url, "duration_ms": seconds * 1000}}


async def seed_creative(scope: Scope, creative_id: str, fx: dict[str, Any]) -> str:
    try:
        await scope.creative(creative_id)  # an existing one must be a sandbox creative
    except ControllerError as exc:
        if exc.code != "NOT_FOUND":
            raise
    format_id = _format_id(fx.get("format_id"))
    if not format_id:
        raise ControllerError("INVALID_PARAMS", "fixture.format_id is required.")
    formats, _ = await _catalog(scope)
    fmt = next((f for f in formats if f.format_id == format_id), None)
    if fmt is None:
        raise ControllerError("INVALID_PARAMS", f"Format '{format_id}' is not in the catalog.")
    account = await scope.account()
    creative = creative_library.CreativeIn(
        creative_id=creative_id,
        name=fx.get("name") or creative_id,
        format_id=format_id,
        assets=fx.get("assets") or placeholder_assets(fmt, creative_id),
        tags=list(fx.get("tags") or []),
    )
    try:
        [item] = await creative_library.sync(
            scope.state, scope.caller, [creative], account_ref={"account_id": account.account_id}
        )
    except AdcpError as exc:
        raise _invalid(exc) from exc
    if item.action == "failed" or item.creative is None:
        raise _invalid(item.errors[0])
    if fx.get("status"):
        stored = await scope.creative(creative_id)
        await set_creative_status(
            scope, stored, fx["status"], fx.get("rejection_reason"), strict=False
        )
    return f"Creative {creative_id} seeded ({item.action})."


def _time(value: Any, name: str) -> datetime | None:
    if value in (None, "asap"):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ControllerError("INVALID_PARAMS", f"fixture.{name} is not a date-time.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _package_requests(scope: Scope, fx: dict[str, Any]) -> list[media_buys.PackageRequest]:
    raw = list(fx.get("packages") or [])
    if not raw:
        raw = [{k: fx[k] for k in ("product_id", "pricing_option_id", "bid_price") if k in fx}]
        if "total_budget" in fx:
            raw[0]["budget"] = fx["total_budget"]
    async with scope.state.db.session() as session:
        products = {
            p.product_id: p
            for p in (
                await session.exec(
                    select(Product)
                    .where(Product.tenant_id == scope.tenant.tenant_id)
                    .order_by(Product.delivery_type.desc(), Product.product_id)  # type: ignore[attr-defined]
                )
            ).all()
        }
    if not products:
        raise ControllerError("INVALID_PARAMS", "The catalog has no product to seed a buy on.")
    out = []
    for p in raw:
        product = products.get(p.get("product_id") or next(iter(products)))
        if product is None:
            raise ControllerError("INVALID_PARAMS", f"Product '{p.get('product_id')}' not found.")
        budget = p.get("budget")
        if isinstance(budget, dict):
            budget = budget.get("amount")
        out.append(
            media_buys.PackageRequest(
                product_id=product.product_id,
                budget=float(budget or max(1000.0, min_spend(product))),
                pricing_option_id=p.get("pricing_option_id")
                or product.pricing_options[0]["pricing_option_id"],
                bid_price=p.get("bid_price"),
                impressions=p.get("impressions"),
                pacing=p.get("pacing"),
                targeting=p.get("targeting_overlay"),
                creative_ids=[
                    a["creative_id"]
                    for a in p.get("creative_assignments") or []
                    if "creative_id" in a
                ],
            )
        )
    return out


async def seed_media_buy(scope: Scope, media_buy_id: str, fx: dict[str, Any]) -> str:
    _check_id(media_buy_id, "media_buy_id")
    async with scope.state.db.session() as session:
        existing = await session.get(MediaBuy, media_buy_id)
    if existing is not None:
        await scope.buy(media_buy_id)  # ours and in a sandbox, else NOT_FOUND / FORBIDDEN
        action = "already seeded"
    else:
        account = await scope.account()
        packages = await _package_requests(scope, fx)
        now = scope.state.clock.now()
        async with scope.state.db.session() as session:
            wanted = [p.product_id for p in packages]
            rows = (await session.exec(select(Product).where(
                Product.tenant_id == scope.tenant.tenant_id,
                Product.product_id.in_(wanted),  # type: ignore[attr-defined]
            ))).all()  # fmt: skip
        lead = max((lead_days(p) for p in rows), default=0)
        start = _time(fx.get("start_time"), "start_time") or (
            now + timedelta(days=lead) if lead else None
        )
        end = _time(fx.get("end_time"), "end_time") or (start or now) + timedelta(days=30)
        req = media_buys.CreateRequest(
            packages=packages,
            start_time=start,
            end_time=end,
            account={"account_id": account.account_id},
            brand=fx.get("brand") or {"domain": account.brand_domain or "sandbox.example"},
            po_number=fx.get("po_number"),
            flat_form=True,  # an auction package without a bid bids the floor
            media_buy_id=media_buy_id,
        )
        try:
            await media_buys.create(
                scope.state, scope.caller, req, completion=Completion(None), render=lambda _b: {}
            )
        except AdcpError as exc:
            raise _invalid(exc) from exc
        action = "created"
    if fx.get("status"):
        await force_media_buy_status(scope, media_buy_id, fx["status"], fx.get("rejection_reason"))
    return f"Media buy {media_buy_id} seeded ({action})."
