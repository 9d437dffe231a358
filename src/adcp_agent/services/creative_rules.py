"""Checking a creative against the format it declares: the assets a format needs are
present, sizes and durations match, URLs are http(s), file types are allowed. Every
problem names the exact field (``creatives[0].assets.banner_image.width``)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from adcp_agent.db.models import CreativeFormat
from adcp_agent.errors import AdcpError

PRIMARY_ASSET = {"display": "image", "video": "video", "audio": "audio"}
_EXT_MIME = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "html": "text/html",
    "htm": "text/html",
    "mp4": "video/mp4",
    "mp3": "audio/mpeg",
    "aac": "audio/aac",
    "m4a": "audio/aac",
}


def is_web_url(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 2048:
        return False
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc) and " " not in value


def _mime_of(asset: dict[str, Any]) -> str | None:
    declared = asset.get("format") or asset.get("container_format")
    if isinstance(declared, str) and declared.lower() in _EXT_MIME:
        return _EXT_MIME[declared.lower()]
    path = urlparse(str(asset.get("url", ""))).path.lower()
    ext = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    return _EXT_MIME.get(ext)


def content_hash(
    name: str,
    format_id: str,
    assets: dict[str, Any],
    tags: list[str],
    declared: dict[str, Any] | None = None,
) -> str:
    """What a sync compares to tell an unchanged creative. ``declared`` (its industry
    identifiers and provenance) counts only when given, so a creative stored before
    they were kept hashes as it did."""
    parts: list[Any] = [name, format_id, assets, sorted(tags)]
    if declared:
        parts.append(declared)
    canonical = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def click_url_of(assets: dict[str, Any]) -> str | None:
    for asset in assets.values():
        if (
            isinstance(asset, dict)
            and asset.get("asset_type") == "url"
            and asset.get("url_type", "clickthrough") == "clickthrough"
        ):
            return asset.get("url")
    return None


def primary_asset(assets: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]] | None:
    wanted = PRIMARY_ASSET[kind]
    for asset_id, asset in assets.items():
        if isinstance(asset, dict) and asset.get("asset_type") == wanted:
            return asset_id, asset
    return None


def validate(
    fmt: CreativeFormat, assets: dict[str, Any], where: str
) -> tuple[str | None, list[str]]:
    """Raise on the first hard problem; return (click_url, warnings)."""
    if not isinstance(assets, dict) or not assets:
        raise AdcpError("VALIDATION_ERROR", "A creative needs assets.", field=f"{where}.assets")
    for asset_id, asset in assets.items():
        field = f"{where}.assets.{asset_id}"
        if not isinstance(asset, dict) or "asset_type" not in asset:
            raise AdcpError("VALIDATION_ERROR", "Each asset needs an asset_type.", field=field)
        if "url" in asset and not is_web_url(asset["url"]):
            raise AdcpError(
                "VALIDATION_ERROR",
                "Asset URLs must be absolute http(s) URLs.",
                field=f"{field}.url",
            )
    found = primary_asset(assets, fmt.kind)
    if found is None:
        raise AdcpError(
            "CREATIVE_REJECTED",
            f"Format '{fmt.format_id}' needs a {PRIMARY_ASSET[fmt.kind]} asset.",
            field=f"{where}.assets",
            suggestion="See list_creative_formats for the asset requirements.",
        )
    asset_id, asset = found
    field = f"{where}.assets.{asset_id}"
    if not asset.get("url") and not asset.get("content"):
        raise AdcpError("VALIDATION_ERROR", "The asset needs a url.", field=f"{field}.url")
    mime = _mime_of(asset)
    if fmt.mime_types and mime is not None and mime not in fmt.mime_types:
        raise AdcpError(
            "CREATIVE_REJECTED",
            f"File type {mime} is not accepted by '{fmt.format_id}' "
            f"(accepted: {', '.join(fmt.mime_types)}).",
            field=f"{field}.url",
        )
    warnings: list[str] = []
    if mime is None:
        warnings.append(f"{field}: the file type could not be read from the URL or format.")
    if fmt.kind == "display":
        for dim, expected in (("width", fmt.width), ("height", fmt.height)):
            got = asset.get(dim)
            if got is None:
                raise AdcpError(
                    "VALIDATION_ERROR",
                    f"The image needs its {dim} in pixels.",
                    field=f"{field}.{dim}",
                )
            if expected and got != expected:
                raise AdcpError(
                    "CREATIVE_REJECTED",
                    f"The image is {asset.get('width')}x{asset.get('height')}; "
                    f"'{fmt.format_id}' requires {fmt.width}x{fmt.height}.",
                    field=f"{field}.{dim}",
                )
    else:
        duration_ms = asset.get("duration_ms")
        if duration_ms is None:
            raise AdcpError(
                "VALIDATION_ERROR", "The asset needs duration_ms.", field=f"{field}.duration_ms"
            )
        allowed = [d * 1000 for d in fmt.durations_s]
        if allowed and not any(abs(duration_ms - d) <= 500 for d in allowed):
            raise AdcpError(
                "CREATIVE_REJECTED",
                f"Duration {duration_ms / 1000:g}s is not accepted by '{fmt.format_id}' "
                f"(accepted: {', '.join(f'{d}s' for d in fmt.durations_s)}).",
                field=f"{field}.duration_ms",
            )
        if (
            fmt.kind == "video"
            and fmt.width
            and asset.get("width")
            and (asset["width"] < fmt.width * 0.5)
        ):
            raise AdcpError(
                "CREATIVE_REJECTED",
                f"Video width {asset['width']}px is too small for '{fmt.format_id}'.",
                field=f"{field}.width",
            )
    size = asset.get("file_size_bytes")
    if fmt.max_file_kb and isinstance(size, int) and size > fmt.max_file_kb * 1024:
        raise AdcpError(
            "CREATIVE_REJECTED",
            f"The file is {size // 1024} KB; '{fmt.format_id}' allows {fmt.max_file_kb} KB.",
            field=f"{field}.file_size_bytes",
        )
    click = click_url_of(assets)
    if fmt.kind == "display" and click is None:
        raise AdcpError(
            "VALIDATION_ERROR",
            "Display creatives need a clickthrough URL asset.",
            field=f"{where}.assets",
        )
    return click, warnings


# Hours before a buy's start by which its creatives must be uploaded (AdCP's
# creative_deadline): the publisher's review time, features.creative_lead_hours. 0 (the
# default): by the start.
CREATIVE_LEAD = "creative_lead_hours"


def creative_deadline(features: dict[str, Any], start: datetime) -> datetime:
    """When a buy starting at ``start`` needs its creatives, under ``features``."""
    return start - timedelta(hours=float(features.get(CREATIVE_LEAD) or 0))
