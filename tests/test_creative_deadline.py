"""AdCP creative_deadline: when a buy's creatives are due — its start less the
publisher's review time (features.creative_lead_hours) — on the booking's answer and on
get_media_buys; the tenant API accepts only a number of hours."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from tests.media_helpers import non_guaranteed, own_tenant
from tests.support import LiveServer, assert_valid, call, mcp_client
from tests.tenant_admin_support import admin_api

TOKEN = "adcp_test_creative_deadline_token_000001"


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_creatives_are_due_the_review_time_before_the_start(live: LiveServer) -> None:
    await own_tenant(
        live.settings, "reviewing-pub", TOKEN, [], features={"creative_lead_hours": 48}
    )
    args = non_guaranteed()
    async with mcp_client(live.mcp_url, TOKEN) as c:
        booked = await call(c, "create_media_buy", args)
        listed = await call(c, "get_media_buys", {"media_buy_ids": [booked.data["media_buy_id"]]})
    assert_valid("create_media_buy", booked.data)
    assert_valid("get_media_buys", listed.data)
    due = _at(args["start_time"]) - timedelta(hours=48)
    assert _at(booked.data["creative_deadline"]) == due
    assert _at(listed.data["media_buys"][0]["creative_deadline"]) == due


async def test_the_review_time_must_be_hours(tmp_path: Path) -> None:
    async with admin_api(tmp_path) as api:
        await api.init_key()
        tenant = await api.create_tenant(name="Pub", subdomain="pub")
        path = f"/tenants/{tenant['tenant_id']}"
        answers = [
            await api.request("PATCH", path, json={"features": {"creative_lead_hours": value}})
            for value in (-1, "48", 721, True, 24)
        ]
    assert [a.status_code for a in answers] == [422, 422, 422, 422, 200]
