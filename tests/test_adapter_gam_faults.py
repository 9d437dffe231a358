"""GAM faults as AdcpErrors, and the retry policy: what a caller sees when Google Ad
Manager refuses, throttles or stalls. Runs against the fake SOAP server on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from adcp_agent.adapter_protocol import LineSpec, OrderSpec, Targeting
from adcp_agent.errors import AdcpError
from tests.fixtures.gam.fake_gam import CONFIG, NOW, Clock, FakeGam, make_adapter

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def fake() -> Iterator[FakeGam]:
    server = FakeGam().start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def spec() -> OrderSpec:
    line = LineSpec(
        package_id="pkg",
        product_id="prod",
        name="Line",
        guaranteed=True,
        pricing_model="cpm",
        rate=10.0,
        currency="USD",
        budget=1000.0,
        impressions_goal=None,
        start=NOW + timedelta(days=2),
        end=NOW + timedelta(days=9),
        pacing="even",
        targeting=Targeting(),
        format_ids=("display_300x250",),
        implementation_config={"ad_unit_ids": ["21001"]},
    )
    return OrderSpec(
        media_buy_id="mb_1",
        name="Buy",
        advertiser_name="Acme",
        advertiser_mapping={"gam_advertiser_id": "5551"},
        start=line.start,
        end=line.end,
        total_budget=1000.0,
        currency="USD",
        po_number=None,
        lines=(line,),
    )


@pytest.mark.parametrize(
    ("gam_error", "field_path", "code", "recovery"),
    [
        ("AuthenticationError.NETWORK_NOT_FOUND", "", "CONFIGURATION_ERROR", "terminal"),
        ("PermissionError.PERMISSION_DENIED", "", "PERMISSION_DENIED", "terminal"),
        ("NotNullError.ARG1_NULL", "lineItems[0].costPerUnit", "VALIDATION_ERROR", "correctable"),
        ("RequiredError.REQUIRED", "lineItems[0].targeting", "VALIDATION_ERROR", "correctable"),
        ("StringLengthError.TOO_LONG", "lineItems[0].name", "VALIDATION_ERROR", "correctable"),
        ("InventoryTargetingError.AT_LEAST_ONE_PLACEMENT_OR_INVENTORY_UNIT_REQUIRED",
         "lineItems[0].targeting.inventoryTargeting", "VALIDATION_ERROR", "correctable"),
    ],
)  # fmt: skip
async def test_terminal_and_correctable_faults_are_mapped_and_not_retried(
    fake, clock, gam_error, field_path, code, recovery
) -> None:
    fake.fail("createLineItems", gam_error, field_path=field_path)
    with pytest.raises(AdcpError) as err:
        await make_adapter(fake, clock).create_order(spec())
    assert (err.value.code, err.value.recovery) == (code, recovery)
    details = err.value.details
    assert details["ad_server"] == "google_ad_manager"
    assert details["gam_error"] == gam_error
    assert details["operation"] == "LineItemService.createLineItems"
    assert details.get("gam_field_path", "") == field_path
    assert gam_error in err.value.message
    assert len(fake.requests("createLineItems")) == 1
    assert clock.sleeps == []


async def test_quota_errors_are_retried_with_growing_jittered_backoff(fake, clock) -> None:
    fake.fail("createOrders", "QuotaError.EXCEEDED_QUOTA", times=2)
    result = await make_adapter(fake, clock).create_order(spec())
    assert result.external_order_id == str(next(iter(fake.net.orders)))
    assert len(fake.requests("createOrders")) == 3
    first, second = clock.sleeps
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0  # base 1 s, doubled, 50-100 % jitter


async def test_server_errors_give_up_after_max_attempts(fake, clock) -> None:
    fake.fail("getOrdersByStatement", "ServerError.SERVER_ERROR", times=10)
    with pytest.raises(AdcpError) as err:
        await make_adapter(fake, clock, max_attempts=3).sync_orders(["100001"])
    assert (err.value.code, err.value.recovery) == ("SERVICE_UNAVAILABLE", "transient")
    assert err.value.details["gam_error"] == "ServerError.SERVER_ERROR"
    assert err.value.details["attempts"] == 3
    assert len(fake.requests("getOrdersByStatement")) == 3
    assert len(clock.sleeps) == 2


async def test_quota_exhausted_is_rate_limited(fake, clock) -> None:
    fake.fail("getCurrentNetwork", "QuotaError.EXCEEDED_QUOTA", times=10)
    gam = make_adapter(fake, clock, max_attempts=2)
    with pytest.raises(AdcpError) as err:
        await gam.session.call("NetworkService", "getCurrentNetwork")
    assert (err.value.code, err.value.recovery) == ("RATE_LIMITED", "transient")
    assert await gam.health() is False  # health reports, never raises


async def test_a_stalled_call_times_out_and_is_retried(fake, clock) -> None:
    # The retry must answer within the timeout: 0.3 s was too little for a loaded CI
    # machine (the retry timed out too, a second sleep).
    gam = make_adapter(fake, clock, timeout_seconds=1.5)
    await gam.health()  # WSDL fetched before the stall
    released = fake.hold("getCurrentNetwork")
    try:
        assert await gam.health() is True
    finally:
        released.set()
    assert len(clock.sleeps) == 1  # one timeout, one retry


async def test_an_unreachable_server_is_transient(clock) -> None:
    fake = FakeGam().start()
    gam = make_adapter(fake, clock, max_attempts=2)
    fake.stop()
    with pytest.raises(AdcpError) as err:
        await gam.sync_inventory()
    assert (err.value.code, err.value.recovery) == ("SERVICE_UNAVAILABLE", "transient")
    assert len(clock.sleeps) == 1


async def test_secrets_never_reach_the_logs(fake, clock, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail("createOrders", "ServerError.SERVER_ERROR", times=10)
    with pytest.raises(AdcpError):
        await make_adapter(fake, clock, max_attempts=2).create_order(spec())
    assert "retry 1/1" in caplog.text  # the retry was logged ...
    assert "'Authorization': 'REDACTED'" in caplog.text  # googleads' request log, scrubbed
    for secret in (CONFIG["client_secret"], CONFIG["refresh_token"], "test-token"):
        assert secret not in caplog.text  # ... without credentials
