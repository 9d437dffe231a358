"""create_media_buy advertiser_industry: AdCP's list, the publisher's category policy
(features.blocked_industries, a category blocking its subcategories), and the industry
kept with the buy for the publisher to see."""

from __future__ import annotations

import json
from pathlib import Path

import adcp

from adcp_agent.db.models_media import MediaBuy
from adcp_agent.services.industries import INDUSTRIES
from tests.media_helpers import non_guaranteed, own_tenant
from tests.support import LiveServer, call, mcp_client, stored_rows
from tests.tenant_admin_support import admin_api

TOKEN = "adcp_test_industries_token_00000000001"


def test_the_list_is_adcps() -> None:
    schema = Path(adcp.__file__).parent / "_schemas/3.1/enums/advertiser-industry.json"
    assert list(INDUSTRIES) == json.loads(schema.read_text())["enum"]


async def test_the_publisher_refuses_the_industries_it_blocks(live: LiveServer) -> None:
    blocked = {"blocked_industries": ["food_beverage", "cannabis"]}
    await own_tenant(live.settings, "careful-pub", TOKEN, [], features=blocked)
    async with mcp_client(live.mcp_url, TOKEN) as c:
        alcohol = await call(
            c,
            "create_media_buy",
            {**non_guaranteed(), "advertiser_industry": "food_beverage.alcohol"},
        )
        weed = await call(
            c, "create_media_buy", {**non_guaranteed(), "advertiser_industry": "weed"}
        )
        listed = await call(c, "get_media_buys", {})
        insurance = await call(
            c, "create_media_buy", {**non_guaranteed(), "advertiser_industry": "finance.insurance"}
        )
    assert alcohol.error_codes == ["POLICY_VIOLATION"], alcohol.data
    assert alcohol.error["field"] == "advertiser_industry"
    assert alcohol.error["recovery"] == "terminal"
    assert weed.error_codes == ["VALIDATION_ERROR"] and weed.error["field"] == "advertiser_industry"
    assert listed.data["media_buys"] == []  # nothing was booked
    assert not insurance.is_error, insurance.data
    [buy] = await stored_rows(
        live.settings, MediaBuy, MediaBuy.media_buy_id == insurance.data["media_buy_id"]
    )
    assert buy.advertiser_industry == "finance.insurance"


async def test_a_blocked_list_must_be_adcp_industries(tmp_path: Path) -> None:
    async with admin_api(tmp_path) as api:
        await api.init_key()
        tenant = await api.create_tenant(name="Pub", subdomain="pub")
        path = f"/tenants/{tenant['tenant_id']}"
        bad = await api.request("PATCH", path, json={"features": {"blocked_industries": ["weed"]}})
        good = await api.request(
            "PATCH", path, json={"features": {"blocked_industries": ["gaming"]}}
        )
    assert bad.status_code in (400, 422), bad.text
    assert "blocked_industries" in bad.text
    assert good.status_code == 200, good.text
    assert good.json()["features"]["blocked_industries"] == ["gaming"]
