"""Sandbox fixtures (``seed_*``): storyboards pre-populate what they reference by id.

Each fixture goes through the service — and so the validation — a real actor would use:
products, pricing options and formats through ``catalog_admin.load_catalog``, accounts
through ``accounts``, creatives through ``creatives.sync``, buys through
``booking.create`` (booked on the mock engine like every sandbox buy). Fixture fields
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
from adcp_agent.services import accounts, booking, catalog_admin, media_buys
from adcp_agent.services import creatives as creative_library
from adcp_agent.services.catalog import lead_days, min_spend
from adcp_agent.services.idempotency import Completion
from adcp_agent.services.sandbox import ControllerError, Scope, tenant_is_sandbox
from adcp_agent.services.sandbox_status import force_media_buy_status, set_creative_status

MAX_ID = 64
MAX_PIXELS = 100_000  # a format's width or height (an integer column)
DEFAULT_INVENTORY = {"daily_impressions": 1_000_000, "fill_rate": 1.0, "ctr": 0.002,
                     "viewability": 0.7, "completion_rate": 0.8}  # fmt: skip
DEFAULT_TARGETING = [
    "geo_country",
    "geo_region",
    "geo_metro",
    "device_type",
    "signals",
    "audiences",
]
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


_KINDS: dict[Any, str] = {
    str: "text",
    dict: "an object",
    list: "a list",
    (int, float): "a number",
    int: "a whole number",
}


def _get(
    fx: dict[str, Any], name: str, kind: Any, where: str = "fixture", *, most: int | None = 200
) -> Any:
    """``fx[name]`` if it is of ``kind`` (None when missing or null), text at most
    ``most`` characters (the columns it lands in); a fixture is the caller's free-form
    JSON, so anything else is INVALID_PARAMS naming the field (a number where an object
    belongs, or 3,000 characters of a name, failed as an unexpected error)."""
    value = fx.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ControllerError("INVALID_PARAMS", f"params.{where}.{name} must be {_KINDS[kind]}.")
    if isinstance(value, str) and most is not None and len(value) > most:
        raise ControllerError(
            "INVALID_PARAMS", f"params.{where}.{name} must be at most {most} characters."
        )
    return value


def _texts(fx: dict[str, Any], name: str, where: str = "fixture") -> list[str] | None:
    """``fx[name]`` as a list of text (None when missing)."""
    values = _get(fx, name, list, where)
    if values is not None and not all(isinstance(v, str) for v in values):
        raise ControllerError("INVALID_PARAMS", f"params.{where}.{name} must be a list of text.")
    return values


def _objects(fx: dict[str, Any], name: str, where: str = "fixture") -> list[dict[str, Any]]:
    """``fx[name]`` as a list of objects ([] when missing)."""
    values = _get(fx, name, list, where) or []
    if not all(isinstance(v, dict) for v in values):
        raise ControllerError("INVALID_PARAMS", f"params.{where}.{name} must be a list of objects.")
    return values


def _format_id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


def _catalog_tenant(scope: Scope) -> None:
    if not tenant_is_sandbox(scope.tenant):
        raise ControllerError(
            "FORBIDDEN",
            "Catalog fixtures (products, pricing options, formats) need a sandbox tenant: "
            "this tenant's catalog is shared with its production buyers.",
        )


async def _catalog(scope: Scope) -> tuple[list[CreativeFormat], list[str]]:
    async with scope.state.db.reading() as session:
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


def pricing_option(raw: dict[str, Any], where: str = "fixture") -> dict[str, Any]:
    """An AdCP pricing option as the catalog stores it."""
    guidance = _get(raw, "price_guidance", dict, where) or {}
    number = (int, float)
    floor = _get(raw, "floor_price", number, where)
    spend = _get(raw, "min_spend", number, where)
    out = {
        "pricing_option_id": _get(raw, "pricing_option_id", str, where),
        "pricing_model": _get(raw, "pricing_model", str, where) or "cpm",
        "currency": _get(raw, "currency", str, where) or "USD",
        "fixed_price": _get(raw, "fixed_price", number, where),
        "floor_price": floor if floor is not None else _get(guidance, "floor", number, where),
        "min_spend": spend
        if spend is not None
        else _get(raw, "min_spend_per_package", number, where),
    }
    return {k: v for k, v in out.items() if v is not None}


async def seed_product(scope: Scope, product_id: str, fx: dict[str, Any]) -> str:
    _catalog_tenant(scope)
    formats, props = await _catalog(scope)
    channels = _texts(fx, "channels") or ["display"]
    delivery_type = _get(fx, "delivery_type", str) or "non_guaranteed"
    kinds = {KIND_OF_CHANNEL.get(c) for c in channels}
    format_ids = (
        [f for f in map(_format_id, _get(fx, "format_ids", list) or []) if f]
        or [f.format_id for f in formats if f.kind in kinds]
        or [f.format_id for f in formats]
    )
    property_ids = list(_texts(fx, "property_ids") or [])
    for i, selection in enumerate(_objects(fx, "publisher_properties")):
        property_ids += (
            _texts(selection, "property_ids", f"fixture.publisher_properties[{i}]") or []
        )
    if options_in := _objects(fx, "pricing_options"):
        options = [
            pricing_option(o, f"fixture.pricing_options[{i}]") for i, o in enumerate(options_in)
        ]
    elif delivery_type == "guaranteed":
        options = [{"pricing_option_id": f"{product_id}_cpm", "fixed_price": 10.0}]
    else:
        options = [{"pricing_option_id": f"{product_id}_cpm", "floor_price": 1.0}]
    product = {
        "product_id": product_id,
        "name": _get(fx, "name", str) or product_id,
        "description": _get(fx, "description", str, most=None)
        or f"Sandbox fixture product {product_id}.",
        "keywords": _texts(fx, "keywords") or [],
        "channels": channels,
        "delivery_type": delivery_type,
        "format_ids": format_ids,
        "property_ids": property_ids or props,
        "countries": _texts(fx, "countries") or [],
        "pricing_options": options,
        "targeting": _texts(fx, "targeting") or list(DEFAULT_TARGETING),
        "inventory": {**DEFAULT_INVENTORY, **(_get(fx, "inventory", dict) or {})},
    }
    await _load(scope, products=[product])
    return f"Product {product_id} seeded."


async def seed_pricing_option(
    scope: Scope, product_id: str, pricing_option_id: str, fx: dict[str, Any]
) -> str:
    _catalog_tenant(scope)
    async with scope.state.db.reading() as session:
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
    kind = _get(fx, "kind", str) or _get(fx, "type", str)
    if kind not in ("display", "video", "audio"):
        kind = next((k for k in ("video", "audio") if k in format_id), "display")
    renders = _objects(fx, "renders")
    dims = (_get(renders[0], "dimensions", dict, "fixture.renders[0]") if renders else None) or {}
    size = re.search(r"(\d+)x(\d+)", format_id)
    width = _get(fx, "width", int) or _get(dims, "width", int, "fixture.renders[0].dimensions")
    height = _get(fx, "height", int) or _get(dims, "height", int, "fixture.renders[0].dimensions")
    width = width or (int(size[1]) if size else None)
    height = height or (int(size[2]) if size else None)
    if any(d is not None and not 0 < d <= MAX_PIXELS for d in (width, height)):
        raise ControllerError(
            "INVALID_PARAMS", f"params.fixture width and height must be 1-{MAX_PIXELS} pixels."
        )
    durations = _get(fx, "durations_s", list)
    if durations is None:
        ms = _get(fx, "duration_ms", int)
        durations = [ms // 1000] if ms else []
    elif not all(isinstance(d, int) and not isinstance(d, bool) for d in durations):
        raise ControllerError("INVALID_PARAMS", "params.fixture.durations_s must be whole numbers.")
    fmt = {
        "format_id": format_id,
        "name": _get(fx, "name", str) or format_id,
        "description": _get(fx, "description", str, most=None) or "",
        "kind": kind,
        "width": width if kind != "audio" else None,
        "height": height if kind != "audio" else None,
        "durations_s": durations if kind != "display" else [],
        "mime_types": _texts(fx, "mime_types") or [],
    }
    await _load(scope, formats=[fmt])
    return f"Creative format {format_id} seeded."


async def seed_account(scope: Scope, account_id: str, fx: dict[str, Any]) -> str:
    _check_id(account_id, "account_id")
    db = scope.state.db
    async with db.reading() as session:
        existing = await session.get(Account, account_id)
        linked = await session.get(AccountPrincipal, (account_id, scope.principal_id))
    if existing is not None and (linked is None or not scope.in_sandbox(existing.sandbox)):
        raise ControllerError("INVALID_PARAMS", f"account_id '{account_id}' is already in use.")
    brand = _get(fx, "brand", dict) or {}
    domain = _get(brand, "domain", str, "fixture.brand")
    try:
        if existing is None:
            existing = await accounts.create_account(
                db,
                scope.tenant.tenant_id,
                account_id=account_id,
                name=_get(fx, "name", str) or account_id,
                principal_ids=[scope.principal_id],
                advertiser=_get(fx, "advertiser", str) or domain,
                brand_domain=domain,
                operator=_get(fx, "operator", str, most=253),
                billing=_get(fx, "billing", str) or "operator",
                payment_terms=_get(fx, "payment_terms", str),
                currency=_get(fx, "currency", str, most=3) or "USD",
                sandbox=True,
                actor=scope.actor,
            )
        status = _get(fx, "status", str)
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
    format_id = _format_id(fx.get("format_id"))  # (text, or an object with its id)
    if not format_id:
        raise ControllerError("INVALID_PARAMS", "fixture.format_id is required.")
    formats, _ = await _catalog(scope)
    fmt = next((f for f in formats if f.format_id == format_id), None)
    if fmt is None:
        raise ControllerError("INVALID_PARAMS", f"Format '{format_id}' is not in the catalog.")
    account = await scope.account()
    creative = creative_library.CreativeIn(
        creative_id=creative_id,
        name=_get(fx, "name", str) or creative_id,
        format_id=format_id,
        assets=_get(fx, "assets", dict) or placeholder_assets(fmt, creative_id),
        tags=_texts(fx, "tags") or [],
    )
    try:
        [item] = await creative_library.sync(
            scope.state, scope.caller, [creative], account_ref={"account_id": account.account_id}
        )
    except AdcpError as exc:
        raise _invalid(exc) from exc
    if item.action == "failed" or item.creative is None:
        raise _invalid(item.errors[0])
    if status := _get(fx, "status", str):
        stored = await scope.creative(creative_id)
        reason = _get(fx, "rejection_reason", str)
        await set_creative_status(scope, stored, status, reason, strict=False)
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
    raw = _objects(fx, "packages")
    where = [f"fixture.packages[{i}]" for i in range(len(raw))]
    if not raw:
        raw = [{k: fx[k] for k in ("product_id", "pricing_option_id", "bid_price") if k in fx}]
        if "total_budget" in fx:
            raw[0]["budget"] = fx["total_budget"]
        where = ["fixture"]
    async with scope.state.db.reading() as session:
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
    number = (int, float)
    for p, at in zip(raw, where, strict=True):
        product_id = _get(p, "product_id", str, at)
        product = products.get(product_id or next(iter(products)))
        if product is None:
            raise ControllerError("INVALID_PARAMS", f"Product '{product_id}' not found.")
        budget = p.get("budget")
        if isinstance(budget, dict):
            budget = _get(budget, "amount", number, f"{at}.budget")
        elif budget is not None:
            budget = _get(p, "budget", number, at)
        assignments = _objects(p, "creative_assignments", at)
        out.append(
            media_buys.PackageRequest(
                product_id=product.product_id,
                budget=float(budget or max(1000.0, min_spend(product))),
                pricing_option_id=_get(p, "pricing_option_id", str, at)
                or product.pricing_options[0]["pricing_option_id"],
                bid_price=_get(p, "bid_price", number, at),
                impressions=_get(p, "impressions", int, at),
                pacing=_get(p, "pacing", str, at),
                targeting=_get(p, "targeting_overlay", dict, at),
                creative_ids=[
                    a["creative_id"] for a in assignments if isinstance(a.get("creative_id"), str)
                ],
            )
        )
    return out


async def seed_media_buy(scope: Scope, media_buy_id: str, fx: dict[str, Any]) -> str:
    _check_id(media_buy_id, "media_buy_id")
    async with scope.state.db.reading() as session:
        existing = await session.get(MediaBuy, media_buy_id)
    if existing is not None:
        await scope.buy(media_buy_id)  # ours and in a sandbox, else NOT_FOUND / FORBIDDEN
        action = "already seeded"
    else:
        account = await scope.account()
        packages = await _package_requests(scope, fx)
        now = scope.state.clock.now()
        async with scope.state.db.reading() as session:
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
            brand=_get(fx, "brand", dict) or {"domain": account.brand_domain or "sandbox.example"},
            po_number=_get(fx, "po_number", str),
            flat_form=True,  # an auction package without a bid bids the floor
            media_buy_id=media_buy_id,
        )
        try:
            await booking.create(
                scope.state, scope.caller, req, completion=Completion(None), render=lambda _b: {}
            )
        except AdcpError as exc:
            raise _invalid(exc) from exc
        action = "created"
    if status := _get(fx, "status", str):
        reason = _get(fx, "rejection_reason", str)
        await force_media_buy_status(scope, media_buy_id, status, reason)
    return f"Media buy {media_buy_id} seeded ({action})."
