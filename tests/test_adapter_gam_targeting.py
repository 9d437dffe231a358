"""The Google Ad Manager adapter's targeting beyond the basics, and finding a line it
made — against the fake GAM SOAP server (tests/fixtures/gam): exclusions as excluded
locations and device categories, AdCP daypart targets as DayPartTargeting, device
platforms as operating systems."""

from __future__ import annotations

import pytest

from adcp_agent.adapter_protocol import DaypartWindow, Targeting
from adcp_agent.errors import AdcpError
from tests.fixtures.gam.fake_gam import make_adapter
from tests.test_adapter_gam import clock, fake, gam, line, only, order

__all__ = ["clock", "fake", "gam"]  # the fake server and adapter fixtures
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # googleads' own


async def test_exclusions_go_to_excluded_locations_and_device_categories(fake) -> None:
    excluding = line(
        targeting=Targeting(
            geo_countries=("US",),
            geo_regions_exclude=("US-CA",),
            geo_metros_exclude=("501",),
            device_types_exclude=("tablet",),
        )
    )
    await make_adapter(fake, geo_location_ids={"US-CA": 21137}).create_order(order(excluding))
    targeting = only(only(fake.requests("createLineItems"))["lineItems"])["targeting"]
    assert targeting["geoTargeting"] == {
        "targetedLocations": [{"id": "2840"}],
        "excludedLocations": [{"id": "21137"}, {"id": "200501"}],
    }
    devices = targeting["technologyTargeting"]["deviceCategoryTargeting"]
    assert devices == {"excludedDeviceCategories": [{"id": "30002"}]}


async def test_daypart_targets_become_day_parts(fake, gam) -> None:
    windows = (DaypartWindow(("monday", "friday"), 6, 10), DaypartWindow(("sunday",), 20, 24))
    await gam.create_order(order(line(targeting=Targeting(daypart_windows=windows))))
    sent = only(only(fake.requests("createLineItems"))["lineItems"])["targeting"]
    assert sent["dayPartTargeting"] == {
        "dayParts": [
            {"dayOfWeek": day, "startTime": {"hour": start, "minute": "ZERO"},
             "endTime": {"hour": end, "minute": "ZERO"}}
            for day, start, end in (("MONDAY", "6", "10"), ("FRIDAY", "6", "10"),
                                    ("SUNDAY", "20", "24"))
        ],
        "timeZone": "PUBLISHER",
    }  # fmt: skip


async def test_find_line_finds_the_line_add_line_made_for_a_package(fake, gam) -> None:
    booked = await gam.create_order(order())
    added = await gam.add_line(booked.external_order_id, line(package_id="pkg_late"))
    assert await gam.find_line(booked.external_order_id, "pkg_late") == added
    assert await gam.find_line(booked.external_order_id, "pkg_never") is None


async def test_device_platforms_become_operating_systems_by_the_tenants_ids(fake) -> None:
    ios = line(targeting=Targeting(device_platforms=("ios",), device_types=("mobile",)))
    with pytest.raises(AdcpError) as err:
        await make_adapter(fake).create_order(order(ios))
    assert (err.value.code, err.value.field) == ("VALIDATION_ERROR", "targeting.device_platform")
    assert "operating_system_ids" in (err.value.suggestion or "")

    await make_adapter(fake, operating_system_ids={"ios": 501012}).create_order(order(ios))
    tech = only(only(fake.requests("createLineItems"))["lineItems"])["targeting"][
        "technologyTargeting"
    ]
    assert tech["operatingSystemTargeting"] == {
        "isTargeted": "true",
        "operatingSystems": [{"id": "501012"}],
    }
    assert tech["deviceCategoryTargeting"] == {"targetedDeviceCategories": [{"id": "30001"}]}


async def test_postal_codes_are_locations_by_the_tenants_ids(fake) -> None:
    zips = line(targeting=Targeting(postal_codes=("US:10001",), postal_codes_exclude=("US:10002",)))
    with pytest.raises(AdcpError) as err:
        await make_adapter(fake).create_order(order(zips))
    assert (err.value.code, err.value.field) == ("VALIDATION_ERROR", "targeting.geo_postal_areas")
    ids = {"US:10001": 9061234, "US:10002": 9061235}
    await make_adapter(fake, geo_location_ids=ids).create_order(order(zips))
    geo = only(only(fake.requests("createLineItems"))["lineItems"])["targeting"]["geoTargeting"]
    assert geo == {
        "targetedLocations": [{"id": "9061234"}],
        "excludedLocations": [{"id": "9061235"}],
    }
