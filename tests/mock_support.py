"""Shared pieces of the mock ad server's tests: order, line and creative specs, and
adapters opened on one state file (another server, or a restart)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from adcp_agent_adapters.mock import MockAdapter

from adcp_agent.adapter_protocol import CreativeSpec, LineSpec, OrderSpec, Targeting

START = datetime(2031, 3, 1, tzinfo=UTC)
END = datetime(2031, 3, 31, tzinfo=UTC)


def line_spec(package_id: str, *, guaranteed: bool = False) -> LineSpec:
    return LineSpec(
        package_id=package_id,
        product_id="news_display",
        name=f"News display {package_id}",
        guaranteed=guaranteed,
        pricing_model="cpm",
        rate=12.5,
        currency="USD",
        budget=5000.0,
        impressions_goal=400_000 if guaranteed else None,
        start=START,
        end=END,
        pacing="even",
        targeting=Targeting(geo_countries=("US",), key_values={"adcp_seg": ("auto",)}),
        format_ids=("display_300x250",),
        implementation_config={},
    )


def order_spec(media_buy_id: str, *, guaranteed: bool = False) -> OrderSpec:
    return OrderSpec(
        media_buy_id=media_buy_id,
        name=f"Buy {media_buy_id}",
        advertiser_name="Acme Motors",
        advertiser_mapping={},
        start=START,
        end=END,
        total_budget=10_000.0,
        currency="USD",
        po_number=None,
        lines=(
            line_spec("pkg_1", guaranteed=guaranteed),
            line_spec("pkg_2", guaranteed=guaranteed),
        ),
    )


def creative_spec(creative_id: str) -> CreativeSpec:
    return CreativeSpec(
        creative_id=creative_id,
        name=f"Banner {creative_id}",
        format_id="display_300x250",
        kind="display",
        asset_url=f"https://cdn.example/{creative_id}.png",
        click_url="https://acme.example",
        width=300,
        height=250,
        duration_s=None,
        advertiser_mapping={},
    )


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "adapters" / "demo-mock.state"


@pytest.fixture
def open_adapter(state_file: Path) -> Iterator[Callable[[], MockAdapter]]:
    """A new ``MockAdapter`` on the shared state file: another server, or a restart."""
    opened: list[MockAdapter] = []

    def open_() -> MockAdapter:
        adapter = MockAdapter(state_file=state_file)
        opened.append(adapter)
        return adapter

    yield open_
    for adapter in opened:
        adapter.close()
