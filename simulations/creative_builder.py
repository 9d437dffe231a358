"""Creatives built from the publisher's own format specs (list_creative_formats), the way
a buying agent would: each required asset gets exactly what its requirements ask for,
so the creative passes validation without this script knowing the catalog."""

from __future__ import annotations

from typing import Any

_EXTENSIONS = {"image": "png", "video": "mp4", "audio": "mp3"}


def build_creative(creative_id: str, fmt: dict[str, Any], brand: str) -> dict[str, Any]:
    """A sync_creatives entry for ``fmt`` (one list_creative_formats format)."""
    assets: dict[str, Any] = {}
    for spec in fmt.get("assets", []):
        asset = _asset(creative_id, spec, brand)
        if asset is not None:
            assets[str(spec["asset_id"])] = asset
    return {
        "creative_id": creative_id,
        "name": f"{brand} {fmt.get('name', fmt['format_id']['id'])}",
        "format_id": fmt["format_id"],
        "assets": assets,
    }


def _asset(creative_id: str, spec: dict[str, Any], brand: str) -> dict[str, Any] | None:
    kind = spec.get("asset_type")
    req: dict[str, Any] = spec.get("requirements") or {}
    if kind == "url":
        # A clickthrough costs nothing and some formats require it: always send one.
        return {"asset_type": "url", "url_type": "clickthrough", "url": f"https://{brand}/landing"}
    if kind not in _EXTENSIONS:
        return None  # an asset type this buyer has no material for; optional ones only
    accepted = req.get("formats") or req.get("containers") or [_EXTENSIONS[kind]]
    asset: dict[str, Any] = {
        "asset_type": kind,
        "url": f"https://cdn.{brand}/{creative_id}.{accepted[0]}",
    }
    for side in ("width", "height"):
        exact = req.get(f"min_{side}") or req.get(f"max_{side}")
        if exact:
            asset[side] = int(exact)
    if kind in ("video", "audio"):
        # The longest allowed length: durations come in fixed steps (15 s, 30 s, ...) and
        # the maximum is always one of them.
        longest = req.get("max_duration_ms") or req.get("min_duration_ms") or 30000
        asset["duration_ms"] = int(longest)
    return asset
