"""Seeded random walks, checked against a model after every step. On SQLite and
PostgreSQL.

- The media-buy lifecycle: pauses, resumes, cancels, archives, package budget and pause
  changes and end-time moves on four live auction buys and two approved guaranteed
  ones, in whatever order the seed gives, some sent with the current or a stale
  revision. A legal change succeeds, bumps the revision by one and shows in
  get_media_buys; an illegal one is INVALID_STATE, one on a stale revision CONFLICT
  (never an unexpected failure), and neither changes anything. After every step on a
  guaranteed buy its product's reservations (the sums the capacity check reads from
  trigger-kept copies) equal the ones computed from the buys themselves
  (tests/test_reservations.py's reference).
- Creatives: uploaded, changed, re-sent unchanged and assigned to two buys' packages;
  each sync reports what the model expects, get_media_buys lists every package's
  assignments, and the (mock) ad server's lines carry exactly those creatives.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from adcp_agent_adapters.mock import load_state

from adcp_agent.config import Settings
from adcp_agent.services import tenants
from tests.creative_helpers import display, sync_args
from tests.databases import database_settings
from tests.media_helpers import guaranteed, non_guaranteed
from tests.support import DEMO_TOKEN
from tests.tenant_admin_support import ServedApp, served_app
from tests.test_reservations import _assert_sums_agree

ADMIN_TOKEN = "adcp_test_walk_admin_token_0123456789ab"
GUARANTEED_PRODUCT = "ctv_sports_premium"

HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "authorization": f"Bearer {DEMO_TOKEN}",
}
STEPS = 150
# The end of a buy's life comes rarely, so the walk spends its steps on living buys.
ACTIONS = {
    "pause": 6,
    "resume": 6,
    "budget": 6,
    "end_time": 4,
    "package_paused": 4,
    "cancel": 1,
    "archive": 1,
}


@dataclass
class Buy:
    """What the model expects of one buy."""

    media_buy_id: str
    package_id: str
    end_time: datetime
    budget: float
    revision: int
    guaranteed: bool = False
    state: str = "live"  # live | paused | canceled
    archived: bool = False
    package_paused: bool = False
    history: list[str] = field(default_factory=list)

    def legal(self, action: str) -> bool:
        if self.archived:
            return False
        running = self.state in ("live", "paused")
        return {
            "pause": self.state == "live",
            "resume": self.state == "paused",
            "cancel": running,
            # A live buy is paused (or has finished) before it is archived.
            "archive": self.state in ("paused", "canceled"),
            "budget": running,
            "end_time": running,
            "package_paused": running,
        }[action]

    @property
    def wire_status(self) -> str:
        # The flights start in the future (tests.media_helpers.flight).
        return {"live": "pending_start", "paused": "paused", "canceled": "canceled"}[self.state]


@pytest.fixture
async def walk(tmp_path: Path) -> AsyncIterator[ServedApp]:
    settings = Settings(
        data_dir=tmp_path,
        demo_token=DEMO_TOKEN,
        mcp_rate_limit_per_minute=10**9,
        outbox_worker=False,
        **database_settings(tmp_path),
    )
    async with served_app(settings, headers=HEADERS) as served:
        await tenants.create_principal(
            served.state.db, tenant_id="demo", name="Ops", token=ADMIN_TOKEN, role="admin"
        )
        yield served


async def _call(
    http: httpx.AsyncClient, tool: str, arguments: dict[str, Any], token: str = DEMO_TOKEN
) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
    body["params"] = {"name": tool, "arguments": arguments}
    auth = {"authorization": f"Bearer {token}"}
    answer = (await http.post("/mcp/", content=json.dumps(body), headers=auth)).json()
    assert "result" in answer, answer
    content: dict[str, Any] = answer["result"]["structuredContent"]
    return content


def _change(buy: Buy, action: str, rng: random.Random) -> dict[str, Any]:
    """The update_media_buy arguments of ``action``, and the model's expectation set
    aside in ``buy.history`` for the message of a failed check."""
    args: dict[str, Any] = {"media_buy_id": buy.media_buy_id}
    if action == "pause":
        args["paused"] = True
    elif action == "resume":
        args["paused"] = False
    elif action == "cancel":
        args["canceled"] = True
    elif action == "archive":
        args["action"] = "archive_order"
    elif action == "budget":
        # A guaranteed package only shrinks (a larger one may not fit the inventory), to
        # no less than its pricing option's 10,000 minimum spend.
        low, top = (10_000, int(buy.budget)) if buy.guaranteed else (500, 20_000)
        budget = float(rng.randrange(low, top + 1, 50))
        args["packages"] = [{"package_id": buy.package_id, "budget": budget}]
    elif action == "end_time":
        args["end_time"] = (buy.end_time + timedelta(days=rng.randrange(1, 5))).isoformat()
    elif action == "package_paused":
        args["packages"] = [{"package_id": buy.package_id, "paused": rng.random() < 0.5}]
    return args


def _apply(buy: Buy, action: str, args: dict[str, Any]) -> None:
    buy.revision += 1
    if action == "pause":
        buy.state = "paused"
    elif action == "resume":
        buy.state = "live"
    elif action == "cancel":
        buy.state = "canceled"
    elif action == "archive":
        buy.archived = True
    elif action == "budget":
        buy.budget = args["packages"][0]["budget"]
    elif action == "end_time":
        buy.end_time = datetime.fromisoformat(args["end_time"])
    elif action == "package_paused":
        buy.package_paused = args["packages"][0]["paused"]


async def _observed(http: httpx.AsyncClient, buy: Buy) -> dict[str, Any]:
    listed = await _call(http, "get_media_buys", {"media_buy_ids": [buy.media_buy_id]})
    [seen] = listed["media_buys"]
    return seen


def _mismatch(buy: Buy, seen: dict[str, Any]) -> str | None:
    package = next(p for p in seen["packages"] if p["package_id"] == buy.package_id)
    checks = {
        "status": (seen["status"], buy.wire_status),
        "revision": (seen.get("revision"), buy.revision),
        "budget": (package["budget"], buy.budget),
        # A paused buy's packages read as paused too; each keeps its own flag for after.
        "package paused": (package["paused"], buy.package_paused or buy.state == "paused"),
        "end_time": (datetime.fromisoformat(seen["end_time"]), buy.end_time),
    }
    wrong = {k: v for k, v in checks.items() if v[0] != v[1]}
    return None if not wrong else f"{wrong} (seen, expected) after {buy.history}"


async def _buy(http: httpx.AsyncClient, created: dict[str, Any], guaranteed: bool) -> Buy:
    seen = await _call(http, "get_media_buys", {"media_buy_ids": [created["media_buy_id"]]})
    [listed] = seen["media_buys"]
    return Buy(
        media_buy_id=created["media_buy_id"],
        package_id=listed["packages"][0]["package_id"],
        end_time=datetime.fromisoformat(listed["end_time"]),
        budget=listed["packages"][0]["budget"],
        revision=listed["revision"],
        guaranteed=guaranteed,
    )


async def test_a_random_walk_through_the_lifecycle_matches_the_model(walk: ServedApp) -> None:
    client = walk.http
    rng = random.Random(20261207)
    buys = []
    for _ in range(4):
        created = await _call(client, "create_media_buy", non_guaranteed(budget=5000))
        assert created["status"] == "completed", created
        buys.append(await _buy(client, created, guaranteed=False))
    for _ in range(2):
        held = await _call(client, "create_media_buy", guaranteed(budget=20_000))
        assert held["status"] == "submitted", held
        media_buy_id = held["message"].split()[2]  # "Media buy mb_… awaits …"
        approve = {"media_buy_id": media_buy_id, "action": "approve_order"}
        approved = await _call(client, "update_media_buy", approve, token=ADMIN_TOKEN)
        assert not approved.get("errors"), approved
        buys.append(await _buy(client, {"media_buy_id": media_buy_id}, guaranteed=True))
    now = walk.state.clock.now()
    assert await _assert_sums_agree(walk.state, [GUARANTEED_PRODUCT], now) > 0
    legal_steps = 0
    for step in range(STEPS):
        buy = rng.choice(buys)
        [action] = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))
        args = _change(buy, action, rng)
        legal = buy.legal(action)
        # Now and then the revision the change was based on: the current one, or (for a
        # legal change) a stale one, which must be refused as a CONFLICT.
        stale = legal and buy.revision > 1 and rng.random() < 0.15
        if stale:
            args["revision"] = buy.revision - 1
        elif rng.random() < 0.15:
            args["revision"] = buy.revision
        tag = "(stale)" if stale else "" if legal else "(illegal)"
        buy.history.append(f"{step}:{action}{tag}")
        answer = await _call(client, "update_media_buy", args)
        codes = [e["code"] for e in answer.get("errors", [])]
        if stale:
            assert codes == ["CONFLICT"], (action, answer, buy.history)
        elif legal:
            assert not codes, (action, answer, buy.history)
            _apply(buy, action, args)
            legal_steps += 1
        else:
            assert codes == ["INVALID_STATE"], (action, answer, buy.history)
        assert (problem := _mismatch(buy, await _observed(client, buy))) is None, problem
        if buy.guaranteed:
            await _assert_sums_agree(walk.state, [GUARANTEED_PRODUCT], now)
    assert legal_steps > 30  # the walk did change things, not only bounce off
    assert any(b.archived for b in buys) and any(b.state == "canceled" for b in buys)


async def test_a_random_walk_of_creatives_and_assignments_matches_the_model(
    walk: ServedApp, tmp_path: Path
) -> None:
    """Creatives uploaded, changed, re-sent unchanged and assigned to packages of two
    buys in a seeded order: each sync reports created / updated / unchanged as the model
    says, get_media_buys lists each package's assignments, and the (mock) ad server's
    lines carry exactly the creatives assigned to their packages."""
    client = walk.http
    rng = random.Random(1207)
    packages = []
    for _ in range(2):
        created = await _call(client, "create_media_buy", non_guaranteed(budget=5000))
        packages.append((created["media_buy_id"], created["packages"][0]["package_id"]))
    versions: dict[str, int] = {}  # creative id -> the version of its content sent last
    assigned: dict[str, set[str]] = {package: set() for _, package in packages}
    history: list[str] = []
    for step in range(80):
        creative_id = f"cr_walk_{rng.randrange(4)}"
        version = rng.choice([versions.get(creative_id, 0), rng.randrange(5)])
        body = display(creative_id)
        body["assets"]["clickthrough_url"]["url"] = f"https://acme.example/v{version}"
        assignments = []
        if rng.random() < 0.5:
            _, package = rng.choice(packages)
            assignments.append({"creative_id": creative_id, "package_id": package})
        history.append(f"{step}:{creative_id}@v{version}{'+' if assignments else ''}")
        expected = (
            "created"
            if creative_id not in versions
            else "unchanged"
            if versions[creative_id] == version
            else "updated"
        )
        synced = await _call(client, "sync_creatives", sync_args([body], assignments))
        [item] = synced["creatives"]
        assert (item["action"], item["status"]) == (expected, "approved"), (item, history)
        versions[creative_id] = version
        for a in assignments:
            assigned[a["package_id"]].add(creative_id)
        listed = await _call(client, "get_media_buys", {"media_buy_ids": [b for b, _ in packages]})
        seen = {
            p["package_id"]: {a["creative_id"] for a in p.get("creative_assignments", [])}
            for b in listed["media_buys"]
            for p in b["packages"]
        }
        assert seen == assigned, (seen, assigned, history)
    orders, creatives = load_state(tmp_path / "adapters" / "demo-mock.state")
    on_lines = {
        line.spec.package_id: {creatives[c].creative_id for c in line.creatives}
        for order in orders.values()
        for line in order.lines.values()
    }
    assert {p: on_lines[p] for p in assigned} == assigned
    assert sum(len(v) for v in assigned.values()) >= 3  # the walk did assign
