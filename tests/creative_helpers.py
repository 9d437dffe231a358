"""Creative payloads for tests."""

from __future__ import annotations

from typing import Any

from tests.media_helpers import key


def display(creative_id: str, width: int = 300, height: int = 250, **extra: Any) -> dict:
    return {
        "creative_id": creative_id,
        "name": f"Banner {creative_id}",
        "format_id": {"agent_url": "http://x/mcp", "id": f"display_{width}x{height}"},
        "assets": {
            "banner_image": {
                "asset_type": "image",
                "url": f"https://cdn.acme.example/{creative_id}.png",
                "width": width,
                "height": height,
            },
            "clickthrough_url": {
                "asset_type": "url",
                "url_type": "clickthrough",
                "url": "https://acme.example/landing",
            },
        },
        **extra,
    }


def video(creative_id: str, seconds: int = 30, fmt: str = "video_1920x1080") -> dict:
    return {
        "creative_id": creative_id,
        "name": f"Spot {creative_id}",
        "format_id": {"agent_url": "http://x/mcp", "id": fmt},
        "assets": {
            "video_file": {
                "asset_type": "video",
                "url": f"https://cdn.acme.example/{creative_id}.mp4",
                "width": 1920,
                "height": 1080,
                "duration_ms": seconds * 1000,
            }
        },
    }


def sync_args(creatives: list[dict], assignments: list[dict] | None = None, **extra: Any) -> dict:
    return {
        "creatives": creatives,
        "assignments": assignments or [],
        "idempotency_key": key("cr"),
        **extra,
    }
