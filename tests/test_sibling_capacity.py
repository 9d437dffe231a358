"""A buy's own guaranteed packages share the product's inventory: two packages of one
product are checked together — when the buy is booked, when one of them grows, when
packages join it — never each as if it were alone."""

from __future__ import annotations

from typing import Any

from tests import host_reads
from tests.support import DEMO_TOKEN, LiveServer, call, mcp_client

HOST_READ = {"product_id": "podcast_host_read", "pricing_option_id": "host_read_cpm"}


def _booking(fractions: list[float], available: int, flight: dict[str, str]) -> dict[str, Any]:
    args = host_reads.request(host_reads.budget(available, fractions[0]), flight)
    args["packages"] = [{**HOST_READ, "budget": host_reads.budget(available, f)} for f in fractions]
    return args


async def test_two_packages_of_one_product_must_fit_together(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        avail_args, flight = host_reads.flight(780)
        available = await host_reads.available(c, avail_args)
        too_much = await call(c, "create_media_buy", _booking([0.6, 0.6], available, flight))
        fits = await call(c, "create_media_buy", _booking([0.4, 0.4], available, flight))
        left = await host_reads.available(c, avail_args)
    assert too_much.error_codes == ["PRODUCT_UNAVAILABLE"], too_much.data
    assert too_much.error["field"] == "packages[1].budget"
    assert not fits.is_error, fits.data
    assert abs(left - available * 0.2) < available * 0.01


async def test_a_package_grows_only_into_what_its_siblings_leave(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        avail_args, flight = host_reads.flight(820)
        available = await host_reads.available(c, avail_args)
        booked = await call(c, "create_media_buy", _booking([0.3, 0.3], available, flight))
        mb = booked.data["message"].split()[2]
        listed = await call(c, "get_media_buys", {"media_buy_ids": [mb]})
        first = listed.data["media_buys"][0]["packages"][0]["package_id"]

        async def grow(fraction: float) -> Any:
            package = {"package_id": first, "budget": host_reads.budget(available, fraction)}
            return await call(c, "update_media_buy", {"media_buy_id": mb, "packages": [package]})

        too_much = await grow(0.75)
        fits = await grow(0.4)
        added = await call(
            c,
            "update_media_buy",
            {
                "media_buy_id": mb,
                "new_packages": [
                    {**HOST_READ, "budget": host_reads.budget(available, 0.2)},
                    {**HOST_READ, "budget": host_reads.budget(available, 0.2)},
                ],
            },
        )
        left = await host_reads.available(c, avail_args)
    assert too_much.error_codes == ["PRODUCT_UNAVAILABLE"], too_much.data
    assert not fits.is_error, fits.data
    # 0.4 + 0.3 booked: 0.3 left, and two new packages of 0.2 do not both fit.
    assert added.error_codes == ["PRODUCT_UNAVAILABLE"], added.data
    assert added.error["field"] == "new_packages[1].budget"
    assert abs(left - available * 0.3) < available * 0.01
