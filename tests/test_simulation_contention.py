"""Simulated buyers competing for one product: they book in buyer order, and a buyer
refused because another took the inventory checks avails again and buys what is left
(the server side of the race is tested in test_media_buys and test_update_races)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from simulations.errors import JourneyFailed, Refused
from simulations.journey import BuyerJourney
from simulations.records import Flight, PackageRun
from simulations.scenarios import SCENARIOS, plan_for
from simulations.turns import Turns

OFFER = {
    "product_id": "ctv_sports_premium",
    "pricing_options": [
        {"pricing_option_id": "ctv", "fixed_price": 42.0, "min_spend_per_package": 10_000}
    ],
    "format_ids": [{"id": "video_30s"}],
}


class _Seller:
    """Answers a journey's calls as a seller with ``left`` budget's worth of the
    product: bookings beyond it are refused with PRODUCT_UNAVAILABLE."""

    def __init__(self, left: float) -> None:
        self.left = left
        self.calls: list[tuple[str, Any]] = []

    async def call(self, phase: str, tool: str, args: dict[str, Any], **kw: Any) -> dict:
        if tool == "get_avails":
            self.calls.append((tool, None))
            return {
                "packages": [{"product_id": OFFER["product_id"], "deliverable_budget": self.left}]
            }
        if not args["packages"]:  # an auction buy: not competed for here
            self.calls.append((tool, None))
            return {"status": "completed", "media_buy_id": "mb_auction", "packages": []}
        [package] = args["packages"]
        self.calls.append((tool, package["budget"]))
        if package["budget"] > self.left:
            error = {"code": "PRODUCT_UNAVAILABLE", "message": "sold"}
            if error["code"] in kw.get("handled", ()):
                raise Refused("refused", error)
            raise JourneyFailed("refused, unhandled")
        self.left -= package["budget"]
        return {"status": "submitted", "task_id": "task_1"}


def _journey(seller: _Seller) -> BuyerJourney:
    scenario = SCENARIOS["quick"]
    flight = Flight.after(datetime(2027, 1, 1, tzinfo=UTC), 3, 3)
    plan = plan_for(scenario, 11, 1)
    journey = BuyerJourney("buyer-1", scenario, plan, seller, None, flight, "run")  # type: ignore[arg-type]
    journey.guaranteed_offers = [OFFER]
    journey.formats = {"video_30s": {}}
    journey.signal_id = "sig"
    return journey


def _wanted(budget: float) -> PackageRun:
    return PackageRun("G1", OFFER["product_id"], "ctv", budget, None, ["sig"], "video_30s")


async def test_a_refused_guaranteed_buy_checks_avails_again_and_buys_what_is_left() -> None:
    seller = _Seller(left=12_000)
    journey = _journey(seller)
    await journey._book(_wanted(20_000), [])  # planned before another buyer took most
    assert [tool for tool, _ in seller.calls] == [
        "create_media_buy",
        "get_avails",
        "create_media_buy",
        "create_media_buy",  # the (empty) auction buy
    ]
    rebooked = seller.calls[2][1]
    assert 10_000 <= rebooked <= 12_000  # the product's minimum, within what is left
    guaranteed = journey.buy("guaranteed")
    assert guaranteed.packages[0].budget == rebooked and guaranteed.task_id == "task_1"


async def test_a_buyer_refused_every_time_fails_with_the_sellers_answer() -> None:
    seller = _Seller(left=12_000)
    seller.left = 9_000  # below the product's minimum: nothing this buyer can book
    journey = _journey(seller)
    try:
        await journey._book(_wanted(20_000), [])
    except JourneyFailed as failure:
        assert "none of ['ctv_sports_premium'] can deliver" in str(failure)
    else:
        raise AssertionError("the journey went on without a buy")


async def test_buyers_take_turns_in_order_and_one_that_gives_up_lets_the_next_go() -> None:
    turns, order = Turns(), []

    async def buyer(n: int, gives_up: bool = False) -> None:
        if gives_up:
            await turns.leave(n)  # failed before booking
            return
        async with turns.turn(n):
            order.append(n)
            await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(buyer(4), buyer(3), buyer(2, gives_up=True), buyer(1)), 5)
    assert order == [1, 3, 4]
