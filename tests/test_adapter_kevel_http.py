"""Kevel adapter: retries, error mapping, the reporting-queue poll loop, forecasts and
configuration. Against the fake Kevel on 127.0.0.1; waits go through an injected sleep."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from adcp_agent_adapters.kevel import KevelAdapter, KevelConfig

from adcp_agent.adapter_protocol import (
    AdapterRegistry,
    AdServerAdapter,
    CreativeSpec,
    DeliveryRow,
    ForecastRequest,
)
from adcp_agent.errors import AdcpError
from tests.test_adapter_kevel_fake import API_KEY, FakeServer, KevelFake, Sleeps


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    srv = FakeServer(KevelFake().handle).start()
    yield srv
    srv.stop()


@pytest.fixture
def kevel(server: FakeServer) -> KevelFake:
    fake = KevelFake()
    server.reset(fake.handle)
    return fake


def adapter(server: FakeServer, sleeps: Sleeps | None = None, **config) -> KevelAdapter:
    config.setdefault("api_key", API_KEY)
    cfg = KevelConfig(
        network_id=23, base_url=f"{server.url}/v1", poll_interval_s=2, poll_deadline_s=10, **config
    )
    return KevelAdapter(cfg, sleep=sleeps if sleeps is not None else Sleeps())


async def test_429_waits_for_retry_after_then_succeeds(server, kevel):
    sleeps = Sleeps()
    server.fail("GET", "/v1/channel", 429, headers={"Retry-After": "3"})
    assert await adapter(server, sleeps).health() is True
    assert sleeps == [3.0]
    assert len(server.seen("GET", "/v1/channel")) == 2


async def test_rate_limit_that_outlasts_the_budget_is_rate_limited(server, kevel):
    sleeps = Sleeps()
    server.fail("GET", "/v1/site", 429, times=10, headers={"Retry-After": "1"})
    with pytest.raises(AdcpError) as exc:
        await adapter(server, sleeps).sync_inventory()
    assert (exc.value.code, exc.value.recovery) == ("RATE_LIMITED", "transient")
    assert sleeps == [1.0, 1.0, 1.0]  # max_retries=3
    server.reset(kevel.handle)
    server.fail("GET", "/v1/site", 429, headers={"Retry-After": "3600"})
    with pytest.raises(AdcpError) as exc:
        await adapter(server, sleeps := Sleeps()).sync_inventory()
    assert exc.value.code == "RATE_LIMITED" and sleeps == []  # too long to wait in-request
    assert exc.value.details["retry_after_s"] == 3600


async def test_server_errors_are_retried_then_service_unavailable(server, kevel):
    sleeps = Sleeps()
    server.fail("GET", "/v1/campaign/5", 500, times=10, body={"message": "boom"})
    with pytest.raises(AdcpError) as exc:
        await adapter(server, sleeps, max_retries=2).order_action("5", "pause")
    assert (exc.value.code, exc.value.recovery) == ("SERVICE_UNAVAILABLE", "transient")
    assert len(server.seen("GET", "/v1/campaign/5")) == 3
    assert sleeps == [0.5, 1.0]  # exponential backoff
    assert API_KEY not in str(exc.value.to_adcp())


async def test_a_post_that_failed_with_500_is_not_repeated(server, kevel):
    server.fail("POST", "/v1/creative", 500)
    with pytest.raises(AdcpError) as exc:
        await adapter(server, ad_type_ids={"f": 5}).upload_creative(_creative())
    assert exc.value.code == "SERVICE_UNAVAILABLE"
    assert len(server.seen("POST", "/v1/creative")) == 1  # a retry could book it twice


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "VALIDATION_ERROR"),
        (401, "CONFIGURATION_ERROR"),
        (403, "PERMISSION_DENIED"),
        (404, "REFERENCE_NOT_FOUND"),
        (409, "CONFLICT"),
    ],
)
async def test_client_errors_map_to_adcp_codes(server, kevel, status, code):
    server.fail("GET", "/v1/flight/9", status, body={"message": "Kevel says no"})
    with pytest.raises(AdcpError) as exc:
        await adapter(server).line_action("1", "9", "pause")
    assert exc.value.code == code
    assert exc.value.details["status"] == status and exc.value.details["ad_server"] == "kevel"
    assert len(server.seen("GET", "/v1/flight/9")) == 1


async def test_wrong_key_and_missing_env_var_are_configuration_errors(server, kevel, monkeypatch):
    with pytest.raises(AdcpError) as exc:
        await adapter(server, api_key="wrong").sync_inventory()
    assert exc.value.code == "CONFIGURATION_ERROR" and "API key" in exc.value.message

    monkeypatch.delenv("KEVEL_TEST_KEY", raising=False)
    with pytest.raises(AdcpError) as exc:
        await adapter(server, api_key=None, api_key_env="KEVEL_TEST_KEY").sync_inventory()
    assert exc.value.field == "adapter_config.api_key_env"
    monkeypatch.setenv("KEVEL_TEST_KEY", API_KEY)
    items = await adapter(server, api_key=None, api_key_env="KEVEL_TEST_KEY").sync_inventory()
    assert any(i.kind == "zone" for i in items)


async def test_unreachable_kevel_is_transient():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    cfg = KevelConfig(network_id=23, api_key=API_KEY, base_url=f"http://127.0.0.1:{port}/v1")
    k = KevelAdapter(cfg, sleep=sleeps)
    with pytest.raises(AdcpError) as exc:
        await k.sync_inventory()
    assert (exc.value.code, exc.value.recovery) == ("SERVICE_UNAVAILABLE", "transient")
    assert len(sleeps) == 3
    assert await k.health() is False


def _report(*details: dict) -> dict:
    return {"Records": [{"Date": "2031-03-02T00:00:00Z", "Details": list(details)}]}


async def test_delivery_report_is_queued_polled_and_parsed(server, kevel):
    kevel.report_result = _report(
        {
            "Grouping": {"OptionId": 300, "RateTypeId": 2},
            "Impressions": 1000,
            "Clicks": 4,
            "Revenue": 12.5,
            "Events": {"17": 80},
        },
        {
            "Grouping": {"OptionId": 300, "RateTypeId": 1},
            "Impressions": 10,
            "Clicks": 0,
            "Revenue": 0.1,
        },
        {
            "Grouping": {"OptionId": 301},
            "Impressions": 5,
            "Clicks": 1,
            "Revenue": 0.06,
            "Date": "2031-03-03T00:00:00Z",
        },
    )
    sleeps = Sleeps()
    rows = await adapter(server, sleeps, completion_event_id=17).get_delivery(
        "55", date(2031, 3, 1), date(2031, 3, 7)
    )

    assert rows == [
        DeliveryRow("300", date(2031, 3, 2), 1010, 4, 80, 12.6),
        DeliveryRow("301", date(2031, 3, 3), 5, 1, 0, 0.06),
    ]
    assert server.seen("POST", "/v1/report/queue")[0].json == {
        "StartDateISO": "2031-03-01T00:00:00",
        "EndDateISO": "2031-03-07T23:59:59",
        "GroupBy": ["day", "optionId"],
        "Parameters": [{"campaignId": 55}],
    }
    assert len(server.seen("GET", "/v1/report/queue/rep-.*")) == 3  # two pending, one done
    assert sleeps == [2, 2]


async def test_a_report_that_never_finishes_hits_the_deadline(server, kevel):
    kevel.report_polls = 1000
    sleeps = Sleeps()
    with pytest.raises(AdcpError) as exc:
        await adapter(server, sleeps).get_delivery("55", date(2031, 3, 1), date(2031, 3, 7))
    assert (exc.value.code, exc.value.recovery) == ("SERVICE_UNAVAILABLE", "transient")
    assert exc.value.details["reference"].startswith("rep-")
    assert sleeps == [2.0] * 5  # waits up to, never past, poll_deadline_s=10


async def test_a_failed_report_names_kevels_reason(server, kevel):
    server.fail("GET", "/v1/report/queue/.*", 200, body={"Status": 3, "Message": "Too large"})
    with pytest.raises(AdcpError) as exc:
        await adapter(server).get_delivery("55", date(2031, 3, 1), date(2031, 3, 7))
    assert exc.value.code == "SERVICE_UNAVAILABLE" and "Too large" in exc.value.message


def _forecast_request(**overrides) -> ForecastRequest:
    values = dict(
        product_id="news_display",
        inventory={"daily_impressions": 1000},
        start=datetime(2031, 3, 1, tzinfo=UTC),
        end=datetime(2031, 3, 11, tzinfo=UTC),
        targeting={"geo_countries": ["US"]},
        reserved_impressions=2500,
        implementation_config={"site_ids": [7], "priority_id": 51},
    )
    return ForecastRequest(**{**values, **overrides})


async def test_forecast_asks_kevel_forecast(server, kevel):
    forecast = await adapter(server).forecast(_forecast_request())
    assert (forecast.available_impressions, forecast.capacity_impressions) == (9000, 10000)
    sent = server.seen("POST", "/v1/forecaster")[0].json
    assert (sent["Type"], sent["StartDate"], sent["EndDate"], sent["PriorityId"]) == (
        "available",
        "2031-03-01",
        "2031-03-11",
        51,
    )
    assert sent["Targeting"]["SiteZoneTargeting"] == [{"SiteId": 7, "IsExclude": False}]
    assert sent["Targeting"]["GeoTargeting"] == [{"CountryCode": "US", "IsExclude": False}]
    assert len(server.seen("GET", "/v1/forecaster/fc-.*")) == 2


async def test_daily_capacity_forecast_needs_no_kevel_call(server, kevel):
    forecast = await adapter(server, forecast_mode="daily_capacity").forecast(_forecast_request())
    assert (forecast.available_impressions, forecast.capacity_impressions) == (7500, 10000)
    assert server.requests == []


def _creative() -> CreativeSpec:
    return CreativeSpec(
        creative_id="c",
        name="n",
        format_id="f",
        kind="display",
        asset_url="https://cdn.example/a.png",
        click_url=None,
        width=300,
        height=250,
        duration_s=None,
        advertiser_mapping={"kevel_advertiser_id": 9},
    )


def test_config_rules():
    with pytest.raises(ValueError, match="exactly one"):
        KevelConfig(network_id=1, api_key="k", api_key_env="K")
    with pytest.raises(ValueError, match="extra"):
        KevelConfig(network_id=1, api_key="k", surprise=True)
    assert KevelConfig(network_id=1, api_key="k").base_url == "https://api.kevel.co/v1"


def test_registry_loads_kevel_from_its_entry_point():
    registry = AdapterRegistry()
    assert "kevel" in registry.names()
    adapter = registry.create("kevel", {"network_id": 23, "api_key_env": "KEVEL_API_KEY"})
    assert isinstance(adapter, KevelAdapter) and isinstance(adapter, AdServerAdapter)
    with pytest.raises(AdcpError) as exc:
        registry.create("kevel", {"network_id": 23})
    assert exc.value.code == "VALIDATION_ERROR"


def test_retry_after_nan_is_no_wait_rather_than_a_failed_sleep() -> None:
    import httpx
    from adcp_agent_adapters._http import _retry_after

    def wait(value: str) -> float | None:
        return _retry_after(httpx.Response(429, headers={"Retry-After": value}))

    assert wait("nan") is None
    assert wait("2.5") == 2.5
    assert wait("inf") == float("inf")  # longer than any max_retry_after_s: given up
    assert wait("-3") == 0.0
