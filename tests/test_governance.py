"""Campaign governance, seller side: sync_governance binds a buyer's governance agent to
an account, and from then on a buy (purchase), a change to it (modification) and a
signal activation there happen only with that agent's verdict — asked over MCP
streamable HTTP and HTTPS (a real FastMCP server on 127.0.0.1), with the credential the
buyer gave; a denial, conditions, an unknown plan or a silent agent commit nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from itertools import count
from typing import Any

import pytest

from adcp_agent.db.models import SignalActivation
from adcp_agent.db.models_accounts import Account
from adcp_agent.db.models_media import MediaBuy
from adcp_agent.state import AppState
from tests.databases import live_servers
from tests.governance_support import CREDENTIALS, GovernanceAgent, approved, trusting_context
from tests.media_helpers import key, non_guaranteed, own_tenant
from tests.support import LiveServer, assert_valid, call, free_port, mcp_client, stored_rows

PRIVATE = {"allow_private_webhooks": ["127.0.0.1/32"]}
_tenants = count(1)


async def _setup(state: AppState) -> None:
    state.governance_tls = trusting_context()


gov_live, gov_live_sqlite, gov_live_postgres = live_servers("gov_live", _setup)


@pytest.fixture(scope="module")
def agent() -> Iterator[GovernanceAgent]:
    running = GovernanceAgent().start()
    yield running
    running.stop()


async def _buyer(live: LiveServer, features: dict[str, Any] | None = None) -> tuple[str, str]:
    """A tenant of its own (private addresses allowed) and its buyer: (token, account)."""
    n = next(_tenants)
    token = f"adcp_test_governance_token_{n:010d}"
    await own_tenant(live.settings, f"gov-pub-{n}", token, [], features=features or PRIVATE)
    async with mcp_client(live.mcp_url, token) as c:
        listed = await call(c, "list_accounts", {})
    return token, listed.data["accounts"][0]["account_id"]


def _binding(account_id: str, url: str, **auth: Any) -> dict[str, Any]:
    return {
        "account": {"account_id": account_id},
        "governance_agents": [
            {
                "url": url,
                "authentication": {"schemes": ["Bearer"], "credentials": CREDENTIALS} | auth,
            }
        ],
    }


async def _governed(live: LiveServer, url: str) -> tuple[str, str]:
    token, account_id = await _buyer(live)
    async with mcp_client(live.mcp_url, token) as c:
        synced = await call(
            c,
            "sync_governance",
            {"idempotency_key": key("gov"), "accounts": [_binding(account_id, url)]},
        )
    assert not synced.is_error, synced.data
    return token, account_id


def _plan(name: str) -> str:
    """A plan id no other test (or backend) of this run uses with the shared agent."""
    return f"{name}-{next(_tenants)}"


def _calls(agent: GovernanceAgent, plan: str) -> list[dict[str, Any]]:
    return [c for c in agent.calls if c["plan_id"] == plan]


async def test_sync_governance_binds_one_agent_per_account_and_replaces_it(
    gov_live: LiveServer, agent: GovernanceAgent
) -> None:
    token, account_id = await _buyer(gov_live)
    async with mcp_client(gov_live.mcp_url, token) as c:
        caps = await call(c, "get_adcp_capabilities", {})
        first = await call(
            c,
            "sync_governance",
            {"idempotency_key": key("gov"), "accounts": [_binding(account_id, agent.url)]},
        )
        other = "https://127.0.0.1:1/governance"
        second = await call(
            c,
            "sync_governance",
            {"idempotency_key": key("gov"), "accounts": [_binding(account_id, other)]},
        )
        listed = await call(c, "list_accounts", {})
    assert caps.data["media_buy"]["governance_aware"] is True
    assert_valid("sync_governance", first.data)
    assert first.data["accounts"] == [
        {
            "account": {"account_id": account_id},
            "status": "synced",
            "governance_agents": [{"url": agent.url}],
        }
    ]
    assert second.data["accounts"][0]["governance_agents"] == [{"url": other}]
    assert_valid("list_accounts", listed.data)
    assert listed.data["accounts"][0]["governance_agents"] == [{"url": other}]
    assert CREDENTIALS not in str(listed.data)
    [stored] = await stored_rows(gov_live.settings, Account, Account.account_id == account_id)
    assert stored.governance_url == other
    assert stored.governance_credentials and CREDENTIALS not in stored.governance_credentials


async def test_bad_bindings_fail_each_on_its_own(
    gov_live: LiveServer, agent: GovernanceAgent
) -> None:
    token, account_id = await _buyer(gov_live)
    stranger_token, strangers = await _buyer(gov_live)
    two_agents = _binding(account_id, agent.url)
    two_agents["governance_agents"] *= 2
    entries = [
        _binding(account_id, agent.url.replace("https://", "http://")),
        two_agents,
        _binding(account_id, agent.url, schemes=["HMAC-SHA256"]),
        _binding(account_id, agent.url, credentials="short"),
        _binding(strangers, agent.url),  # another buyer's account
        _binding(account_id, "https://10.1.2.3/mcp"),  # private, not allowed
        _binding(account_id, agent.url),  # this one is fine...
        _binding(account_id, agent.url),  # ...but the account cannot be named twice
    ]
    async with mcp_client(gov_live.mcp_url, token) as c:
        mixed = await call(c, "sync_governance", {"idempotency_key": key("g"), "accounts": entries})
        alone = await call(
            c, "sync_governance", {"idempotency_key": key("g"), "accounts": entries[:1]}
        )
    assert_valid("sync_governance", mixed.data)
    results = mixed.data["accounts"]
    assert [r["status"] for r in results] == ["failed"] * 6 + ["synced", "failed"]
    assert [r["errors"][0]["code"] for r in results if r["status"] == "failed"] == [
        "VALIDATION_ERROR",
        "VALIDATION_ERROR",
        "UNSUPPORTED_FEATURE",
        "VALIDATION_ERROR",
        "ACCOUNT_NOT_FOUND",
        "VALIDATION_ERROR",
        "VALIDATION_ERROR",
    ]
    assert results[0]["errors"][0]["field"] == "accounts[0].governance_agents[0].url"
    assert results[3]["errors"][0]["field"] == (
        "accounts[3].governance_agents[0].authentication.credentials"
    )
    assert alone.error_codes == ["VALIDATION_ERROR"]
    [stored] = await stored_rows(gov_live.settings, Account, Account.account_id == account_id)
    assert stored.governance_url == agent.url  # the one good entry
    [theirs] = await stored_rows(gov_live.settings, Account, Account.account_id == strangers)
    assert theirs.governance_url is None and stranger_token


async def test_a_governed_buy_is_booked_only_with_the_agents_approval(
    gov_live: LiveServer, agent: GovernanceAgent
) -> None:
    plan = _plan("plan-ok")
    agent.verdicts[plan] = approved("gov.ctx.one")
    token, account_id = await _governed(gov_live, agent.url)
    args = non_guaranteed(budget=5000, targeting_overlay={"geo_countries": ["US", "CA"]})
    args["account"] = {"account_id": account_id}
    async with mcp_client(gov_live.mcp_url, token) as c:
        planless = await call(c, "create_media_buy", {**args, "idempotency_key": key("p")})
        booked = await call(
            c,
            "create_media_buy",
            {**args, "plan_id": plan, "governance_context": "buyer.ctx.zero"},
        )
        again = await call(
            c,
            "create_media_buy",
            {**args, "plan_id": plan, "governance_context": "buyer.ctx.zero"},
        )
    assert planless.error_codes == ["INVALID_REQUEST"] and planless.error["field"] == "plan_id"
    assert not booked.is_error, booked.data
    assert_valid("create_media_buy", booked.data)
    assert again.data["media_buy_id"] == booked.data["media_buy_id"]  # a replay: not asked again
    [check] = _calls(agent, plan)
    assert check["phase"] == "purchase" and check["purchase_type"] == "media_buy"
    assert check["caller"].endswith("/mcp")
    assert check["authorization"] == f"Bearer {CREDENTIALS}"
    assert check["governance_context"] == "buyer.ctx.zero"
    planned = check["planned_delivery"]
    assert planned["total_budget"] == 5000 and planned["currency"] == "USD"
    assert planned["geo"] == {"countries": ["CA", "US"]}
    assert planned["channels"] == ["display"]
    assert planned["start_time"] == args["start_time"].replace("+00:00", "Z")
    [buy] = await stored_rows(
        gov_live.settings, MediaBuy, MediaBuy.media_buy_id == booked.data["media_buy_id"]
    )
    assert (buy.plan_id, buy.governance_context, buy.governance_check_id) == (
        plan,
        "gov.ctx.one",
        "chk_" + str(agent.calls.index(check) + 1),
    )


@pytest.mark.parametrize(
    ("plan", "verdict", "code"),
    [
        (
            "plan-deny",
            {
                "verdict": "denied",
                "explanation": "Over the plan's remaining budget.",
                "findings": [
                    {
                        "category_id": "budget_compliance",
                        "severity": "critical",
                        "explanation": "5,000 exceeds the 1,000 left.",
                    }
                ],
            },
            "GOVERNANCE_DENIED",
        ),
        (
            "plan-conditions",
            {
                "verdict": "conditions",
                "explanation": "Allowed in the US only.",
                "conditions": [
                    {"field": "geo.countries", "reason": "US only", "required_value": ["US"]}
                ],
            },
            "GOVERNANCE_DENIED",
        ),
        ("plan-nobody-knows", None, "PLAN_NOT_FOUND"),
        (
            "plan-stale",
            approved("gov.ctx.old", expires_in=-dt.timedelta(minutes=5)),
            "GOVERNANCE_UNAVAILABLE",
        ),
        ("plan-mute", {"explanation": "no verdict at all"}, "GOVERNANCE_UNAVAILABLE"),
        (
            "plan-zoneless",  # an expiry without a zone is no time at all
            approved("gov.ctx") | {"expires_at": "2031-01-01T00:00:00"},
            "GOVERNANCE_UNAVAILABLE",
        ),
    ],
)
async def test_without_an_approval_nothing_is_booked(
    gov_live: LiveServer, agent: GovernanceAgent, plan: str, verdict: Any, code: str
) -> None:
    kind, plan = plan, _plan(plan)
    if verdict is not None:
        agent.verdicts[plan] = verdict
    token, account_id = await _governed(gov_live, agent.url)
    async with mcp_client(gov_live.mcp_url, token) as c:
        refused = await call(
            c,
            "create_media_buy",
            {**non_guaranteed(), "account": {"account_id": account_id}, "plan_id": plan},
        )
        listed = await call(c, "get_media_buys", {})
    assert refused.error_codes == [code], refused.data
    assert_valid("create_media_buy", refused.data)
    assert listed.data["media_buys"] == []
    assert len(_calls(agent, plan)) == 1
    error = refused.error
    if kind == "plan-deny":
        assert "Over the plan's remaining budget" in error["message"]
        assert error["recovery"] == "correctable"
        assert error["details"]["findings"][0]["category_id"] == "budget_compliance"
    if kind == "plan-conditions":
        assert "geo.countries: US only" in error["message"]
        assert error["details"]["conditions"][0]["required_value"] == ["US"]
    if code == "GOVERNANCE_UNAVAILABLE":
        assert error["recovery"] == "transient"


async def test_an_agent_answering_plain_json_without_sessions_is_understood(
    gov_live: LiveServer,
) -> None:
    plain = GovernanceAgent(plain_json=True).start()
    try:
        plan = _plan("plan-plain")
        plain.verdicts[plan] = approved("gov.ctx.plain")
        token, account_id = await _governed(gov_live, plain.url)
        async with mcp_client(gov_live.mcp_url, token) as c:
            booked = await call(
                c,
                "create_media_buy",
                {**non_guaranteed(), "account": {"account_id": account_id}, "plan_id": plan},
            )
    finally:
        plain.stop()
    assert not booked.is_error, booked.data
    assert [c["phase"] for c in plain.calls] == ["purchase"]
    [buy] = await stored_rows(
        gov_live.settings, MediaBuy, MediaBuy.media_buy_id == booked.data["media_buy_id"]
    )
    assert buy.governance_context == "gov.ctx.plain"


async def test_an_agent_that_does_not_answer_books_nothing(gov_live: LiveServer) -> None:
    silent = f"https://127.0.0.1:{free_port()}/mcp"  # nothing listens there
    token, account_id = await _governed(gov_live, silent)
    async with mcp_client(gov_live.mcp_url, token) as c:
        refused = await call(
            c,
            "create_media_buy",
            {**non_guaranteed(), "account": {"account_id": account_id}, "plan_id": "plan-x"},
        )
        listed = await call(c, "get_media_buys", {})
    assert refused.error_codes == ["GOVERNANCE_UNAVAILABLE"], refused.data
    assert refused.error["recovery"] == "transient"
    assert listed.data["media_buys"] == []


async def test_changes_to_a_governed_buy_are_checked_except_stopping(
    gov_live: LiveServer, agent: GovernanceAgent
) -> None:
    plan = _plan("plan-change")
    agent.verdicts[plan] = [
        approved("gov.ctx.booked"),
        approved("gov.ctx.grown"),
        {
            "verdict": "denied",
            "explanation": "No more budget on this plan.",
            "findings": [
                {"category_id": "budget", "severity": "critical", "explanation": "Spent."}
            ],
        },
    ]
    token, account_id = await _governed(gov_live, agent.url)
    async with mcp_client(gov_live.mcp_url, token) as c:
        booked = await call(
            c,
            "create_media_buy",
            {
                **non_guaranteed(5000),
                "account": {"account_id": account_id},
                "plan_id": plan,
            },
        )
        buy_id = booked.data["media_buy_id"]
        package_id = booked.data["packages"][0]["package_id"]
        change = {"media_buy_id": buy_id, "account": {"account_id": account_id}}
        grown = await call(
            c,
            "update_media_buy",
            {
                **change,
                "idempotency_key": key("u"),
                "packages": [{"package_id": package_id, "budget": 6000}],
            },
        )
        denied = await call(
            c,
            "update_media_buy",
            {
                **change,
                "idempotency_key": key("u"),
                "packages": [{"package_id": package_id, "budget": 9000}],
            },
        )
        paused = await call(
            c, "update_media_buy", {**change, "idempotency_key": key("u"), "paused": True}
        )
        [after] = (await call(c, "get_media_buys", {"media_buy_ids": [buy_id]})).data["media_buys"]
    assert not grown.is_error, grown.data
    assert denied.error_codes == ["GOVERNANCE_DENIED"], denied.data
    assert "No more budget on this plan" in denied.error["message"]
    assert not paused.is_error, paused.data  # stopping spend is never held up
    calls = _calls(agent, plan)
    assert [c["phase"] for c in calls] == ["purchase", "modification", "modification"]
    assert calls[1]["governance_context"] == "gov.ctx.booked"
    assert calls[1]["modification_summary"].startswith(
        "Total budget from 5,000.00 USD to 6,000.00 USD; "
        f"Package {package_id} budget from 5,000.00 USD to 6,000.00 USD"
    )
    assert calls[1]["planned_delivery"]["total_budget"] == 6000
    assert calls[2]["governance_context"] == "gov.ctx.grown"
    assert after["total_budget"] == 6000  # the denied change changed nothing
    assert after["revision"] == 3  # booked 1, grown 2, paused 3
    [buy] = await stored_rows(gov_live.settings, MediaBuy, MediaBuy.media_buy_id == buy_id)
    assert buy.governance_context == "gov.ctx.grown"


async def test_a_governed_activation_needs_its_governance_context(
    gov_live: LiveServer, agent: GovernanceAgent
) -> None:
    token, account_id = await _governed(gov_live, agent.url)
    activation = {
        "idempotency_key": key("a"),
        "signal_agent_segment_id": "auto_intenders",
        "account": {"account_id": account_id},
    }
    async with mcp_client(gov_live.mcp_url, token) as c:
        bare = await call(c, "activate_signal", activation)
        governed = await call(
            c, "activate_signal", {**activation, "governance_context": "gov.ctx.signal"}
        )
        defaulted = await call(
            c, "activate_signal", {k: v for k, v in activation.items() if k != "account"}
        )
    assert bare.error_codes == ["INVALID_REQUEST"] and bare.error["field"] == "governance_context"
    assert not governed.is_error, governed.data
    assert_valid("activate_signal", governed.data)
    assert defaulted.error_codes == ["INVALID_REQUEST"]  # the default account is the governed one
    rows = await stored_rows(
        gov_live.settings, SignalActivation, SignalActivation.signal_id == "auto_intenders"
    )
    assert "gov.ctx.signal" in {r.governance_context for r in rows}
