"""Delivery-phase governance: a governance agent that asks for delivery figures (its
verdict's next_check) gets them from the outbox worker when due, on the business clock
— the period since the last report, the totals so far, the pacing — and a denial
pauses the buy, whose resumption the agent is asked about again."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from adcp_agent_tools.app import build_mcp
from adcp_agent_tools.executor import McpToolExecutor

from adcp_agent.config import Settings
from adcp_agent.server import prepare
from adcp_agent.services import identity
from adcp_agent.services.outbox_worker import OutboxWorker
from adcp_agent.state import AppState
from tests.databases import Backend, database_settings
from tests.delivery_support import approve_and_push_creatives_directly, buy_args, ros
from tests.governance_support import CREDENTIALS, GovernanceAgent, approved, trusting_context
from tests.media_helpers import key, own_tenant

TOKEN = "adcp_test_governance_delivery_token_0001"


@pytest.fixture(scope="module")
def agent() -> Iterator[GovernanceAgent]:
    running = GovernanceAgent().start()
    yield running
    running.stop()


@pytest.fixture
async def state(tmp_path: Path, backend: Backend) -> AsyncIterator[AppState]:
    settings = Settings(data_dir=tmp_path, sim_clock=True, **database_settings(tmp_path, backend))
    app_state = AppState.from_settings(settings)
    await prepare(app_state)
    app_state.governance_tls = trusting_context()
    await own_tenant(
        settings, "gov-delivery", TOKEN, [], features={"allow_private_webhooks": ["127.0.0.1/32"]}
    )
    yield app_state
    await app_state.db.dispose()


async def test_delivery_figures_go_to_the_agent_and_a_denial_pauses_the_buy(
    state: AppState, agent: GovernanceAgent, backend: Backend
) -> None:
    tools = McpToolExecutor(build_mcp(state))
    caller = await identity.authenticate(state.db, TOKEN)

    async def call(tool: str, args: dict[str, Any]) -> Any:
        return await tools.call(caller, tool, args)

    now = state.clock.now()
    plan = f"plan-delivery-{backend}"
    agent.verdicts[plan] = [
        approved("ctx.booked", next_check=now + dt.timedelta(hours=6)),
        approved("ctx.day-one", next_check=now + dt.timedelta(hours=12)),
        {
            "verdict": "denied",
            "explanation": "Spend is running past the plan's authority.",
            "findings": [{"category_id": "budget", "severity": "critical", "explanation": "Over."}],
        },
    ]
    [account] = (await call("list_accounts", {})).data["accounts"]
    synced = await call(
        "sync_governance",
        {
            "idempotency_key": key("gov"),
            "accounts": [
                {
                    "account": {"account_id": account["account_id"]},
                    "governance_agents": [
                        {
                            "url": agent.url,
                            "authentication": {"schemes": ["Bearer"], "credentials": CREDENTIALS},
                        }
                    ],
                }
            ],
        },
    )
    assert not synced.is_error, synced.data
    created = await call("create_media_buy", buy_args(now, [ros(960)], hours=48, plan_id=plan))
    assert not created.is_error, created.data
    mb = created.data["media_buy_id"]
    await approve_and_push_creatives_directly(state.settings, mb)
    worker = OutboxWorker(state)
    try:
        state.clock.advance(dt.timedelta(hours=3))
        await worker.tick()  # not due yet
        assert [c["phase"] for c in _calls(agent, plan)] == ["purchase"]
        state.clock.advance(dt.timedelta(hours=4))  # 7 h in: due since 6 h
        await worker.tick()
        state.clock.advance(dt.timedelta(hours=6))  # 13 h in: due since 12 h
        await worker.tick()
    finally:
        await worker.client.aclose()
    checks = _calls(agent, plan)
    assert [c["phase"] for c in checks] == ["purchase", "delivery", "delivery"]
    first, second = checks[1]["delivery_metrics"], checks[2]["delivery_metrics"]
    start = _hour(now)
    assert first["reporting_period"] == {
        "start": _z(start),
        "end": _z(start + dt.timedelta(hours=7)),
    }
    assert second["reporting_period"]["start"] == first["reporting_period"]["end"]
    assert 0 < first["spend"] == first["cumulative_spend"]
    assert first["impressions"] > 0
    assert second["cumulative_spend"] == pytest.approx(first["spend"] + second["spend"], abs=0.02)
    assert checks[1]["governance_context"] == "ctx.booked"
    assert checks[2]["governance_context"] == "ctx.day-one"
    listed = await call("get_media_buys", {"media_buy_ids": [mb], "include_history": 5})
    [buy] = listed.data["media_buys"]
    assert buy["status"] == "paused"  # denied: paused on the ad server
    assert buy["history"][0]["actor"] == "governance_agent"
    resumed = await call("update_media_buy", {"media_buy_id": mb, "paused": False})
    assert resumed.is_error, resumed.data  # asked again: no
    assert [e["code"] for e in resumed.data["errors"]] == ["GOVERNANCE_DENIED"]
    assert [c["phase"] for c in _calls(agent, plan)][-1] == "modification"


def _calls(agent: GovernanceAgent, plan: str) -> list[dict[str, Any]]:
    return [c for c in agent.calls if c["plan_id"] == plan]


def _hour(when: dt.datetime) -> dt.datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def _z(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
