"""Creative payloads for tests, and a publisher that reviews creatives by hand."""

from __future__ import annotations

from typing import Any

from adcp_agent import demo_catalog
from adcp_agent.services import catalog_admin
from tests.media_helpers import key
from tests.tenant_admin_support import AdminApi


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


async def careful_publisher(api: AdminApi) -> tuple[str, str]:
    """A publisher whose creatives wait for review (the demo catalog), and its buyer's
    token: (tenant id, token)."""
    await api.init_key()
    tenant = await api.create_tenant(
        name="Careful",
        subdomain="careful",
        ad_server="mock",
        features={"creative_approval": "manual"},
    )
    tid = tenant["tenant_id"]
    await catalog_admin.load_catalog(
        api.state.db,
        tid,
        formats=demo_catalog.FORMATS,
        properties=demo_catalog.PROPERTIES,
        products=demo_catalog.PRODUCTS,
        signals=demo_catalog.SIGNALS,
    )
    return tid, (await api.create_principal(tid, name="Agency"))["access_token"]
