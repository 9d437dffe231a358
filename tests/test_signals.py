"""Signals: discovery ranking and idempotent, audited activation."""

from __future__ import annotations

from sqlmodel import select

from adcp_agent.db.engine import create_database
from adcp_agent.db.models import AuditLog, SignalActivation
from tests.support import DEMO_TOKEN, LiveServer, assert_valid, call, mcp_client


async def test_get_signals_ranks_by_spec_and_filters(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        cars = await call(client, "get_signals", {"signal_spec": "people shopping for a new car"})
        contextual = await call(client, "get_signals", {"type": "contextual"})
        cheap = await call(client, "get_signals", {"filters": {"max_cpm": 1.0}})
        seed_alias = await call(client, "get_signals", {"query": "sports fans"})
    for r in (cars, contextual, cheap, seed_alias):
        assert not r.is_error
        assert_valid("get_signals", r.data)
    assert cars.data["signals"][0]["signal_agent_segment_id"] == "auto_intenders"
    assert {s["signal_agent_segment_id"] for s in contextual.data["signals"]} == {
        "ctx_live_sports",
        "ctx_breaking_news",
        "ctx_personal_finance",
    }
    assert all(s["pricing_options"][0]["cpm"] <= 1.0 for s in cheap.data["signals"])
    assert seed_alias.data["signals"][0]["signal_agent_segment_id"] == "sports_enthusiasts"


async def test_activate_signal_is_idempotent_and_audited(live: LiveServer) -> None:
    args = {"signal_agent_segment_id": "new_parents", "idempotency_key": "act-0000000000000001"}
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        first = await call(client, "activate_signal", args)
        second = await call(client, "activate_signal", args)
        platform = await call(
            client,
            "activate_signal",
            {
                "signal_agent_segment_id": "new_parents",
                "destinations": [{"type": "platform", "platform": "the-trade-desk"}],
            },
        )
    assert not first.is_error
    assert_valid("activate_signal", first.data)
    assert first.data == second.data
    assert first.data["deployments"][0]["activation_key"]["value"] == "new_parents"
    assert platform.error_codes == ["UNSUPPORTED_FEATURE"]
    assert platform.error["field"] == "destinations[0].type"

    db = create_database(live.settings.resolved_database_url())
    try:
        async with db.session() as session:
            rows = (
                await session.exec(
                    select(SignalActivation).where(SignalActivation.signal_id == "new_parents")
                )
            ).all()
            audits = (
                await session.exec(
                    select(AuditLog).where(
                        AuditLog.action == "signal.activate", AuditLog.target_id == "new_parents"
                    )
                )
            ).all()
    finally:
        await db.dispose()
    assert len(rows) == 1 and rows[0].principal_id == "demo_buyer"
    assert len(audits) == 1 and audits[0].actor == "principal:demo_buyer"


async def test_identical_concurrent_activations_agree(live: LiveServer) -> None:
    import asyncio

    args = {"signal_agent_segment_id": "food_lovers"}
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        results = await asyncio.gather(*(call(client, "activate_signal", args) for _ in range(6)))
    assert [r.is_error for r in results] == [False] * 6, [r.data for r in results]
    assert len({str(r.data["deployments"]) for r in results}) == 1


async def test_get_signals_takes_the_3_1_lookups_and_reports_what_it_cannot_filter(
    live: LiveServer,
) -> None:
    by_object = {"source": "agent", "agent_url": live.mcp_url, "id": "auto_intenders"}
    by_ref = {"scope": "product", "signal_id": "food_lovers"}
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        looked_up = await call(
            client,
            "get_signals",
            {"signal_ids": [by_object, "new_parents"], "signal_refs": [by_ref]},
        )
        small = await call(client, "get_signals", {"max_results": 2})
        both = await call(
            client, "get_signals", {"max_results": 2, "pagination": {"max_results": 3}}
        )
        unapplied = await call(
            client,
            "get_signals",
            {"countries": ["US"], "filters": {"catalog_types": ["marketplace"], "max_percent": 5}},
        )
    for r in (looked_up, small, both, unapplied):
        assert not r.is_error, r.data
        assert_valid("get_signals", r.data)
    assert {s["signal_agent_segment_id"] for s in looked_up.data["signals"]} == {
        "auto_intenders",
        "new_parents",
        "food_lovers",
    }
    assert len(small.data["signals"]) == 2 and small.data["pagination"]["has_more"]
    assert len(both.data["signals"]) == 3  # pagination.max_results wins
    assert [(e["code"], e["field"]) for e in unapplied.data["errors"]] == [
        ("UNSUPPORTED_FEATURE", "countries"),
        ("UNSUPPORTED_FEATURE", "filters.catalog_types"),
    ]
    assert unapplied.data["signals"]  # max_percent excludes no per-mille signal


async def test_activation_checks_the_pricing_option_it_commits_to(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        found = await call(client, "get_signals", {"signal_ids": ["auto_intenders"]})
        [option] = found.data["signals"][0]["pricing_options"]
        agreed = await call(
            client,
            "activate_signal",
            {
                "signal_agent_segment_id": "auto_intenders",
                "pricing_option_id": option["pricing_option_id"],
            },
        )
        other = await call(
            client,
            "activate_signal",
            {"signal_agent_segment_id": "auto_intenders", "pricing_option_id": "new_parents_cpm"},
        )
    assert not agreed.is_error, agreed.data
    assert other.error_codes == ["VALIDATION_ERROR"]
    assert other.error["field"] == "pricing_option_id"
    assert option["pricing_option_id"] in other.error["suggestion"]
