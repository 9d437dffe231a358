"""First-party audiences: sync_audiences uploads a buyer's CRM lists, matched against
the publisher's identity graph (tenant management) — counts, per-identifier breakdown,
ready / too_small against the publisher's minimum — and packages target them
(targeting_overlay.audience_include / audience_exclude): checked against the account,
sent to the ad server as key-values, and delivering to the matched share only."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

from adcp_agent_adapters.gam.targeting import key_value_criteria
from adcp_agent_adapters.kevel.mapping import custom_targeting

from adcp_agent.adapter_protocol import Targeting
from adcp_agent.services import audiences, targeting
from tests.delivery_support import (
    SimServer,
    approve_and_push_creatives_directly,
    buy_args,
    key,
    ros,
    sim,
    sim_postgres,
    sim_sqlite,
)
from tests.support import DEMO_TOKEN, assert_valid, call, mcp_client
from tests.tenant_admin_support import admin_api

__all__ = ["sim", "sim_postgres", "sim_sqlite"]  # the module-scoped simulated-clock server

GRAPH = "/tenants/demo/identities"
KNOWN_USERS = 10_000


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def email(i: int) -> str:
    return sha(f"user{i}@example.com")


def _user(i: int) -> dict[str, Any]:
    user: dict[str, Any] = {"user_key": f"u{i}", "hashed_email": email(i)}
    if 500 <= i < 600:
        user["uids"] = [{"type": "uid2", "value": f"uid2-{i}"}]
    return user


async def _graph(sim: SimServer) -> dict[str, Any]:
    """The publisher's 10,000 users (loading them again changes nothing)."""
    loaded = await sim.admin("POST", GRAPH, json={"users": [_user(i) for i in range(KNOWN_USERS)]})
    assert loaded.status_code == 200, loaded.text
    return loaded.json()


def _sync(*audiences: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"idempotency_key": key("aud"), "audiences": list(audiences), **more}


def _by_id(answer: Any) -> dict[str, dict[str, Any]]:
    return {a["audience_id"]: a for a in answer.data["audiences"]}


LOYAL = {
    "audience_id": "loyal",
    "name": "Loyalty members",
    "audience_type": "crm",
    "tags": ["high_ltv"],
    "consent_basis": "consent",
    "add": [{"external_id": f"m{i}", "hashed_email": email(i)} for i in range(100)]
    + [{"external_id": f"x{i}", "hashed_email": email(100_000 + i)} for i in range(50)]
    + [{"external_id": f"d{i}", "uids": [{"type": "uid2", "value": f"uid2-{500 + i}"}]}
       for i in range(10)],
}  # fmt: skip
TINY = {
    "audience_id": "tiny",
    "add": [{"external_id": f"t{i}", "hashed_email": email(1000 + i)} for i in range(10)],
}
SUPPRESS = {
    "audience_id": "lapsed",
    "audience_type": "suppression",
    "add": [{"external_id": f"s{i}", "hashed_email": email(2000 + i)} for i in range(3)],
}


async def test_audiences_are_matched_against_the_publishers_users(sim: SimServer) -> None:
    graph = await _graph(sim)
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        caps = await call(c, "get_adcp_capabilities", {})
        bad = {"audience_id": "bad", "add": [{"external_id": "b1"}, {"external_id": "b2",
               "hashed_email": "Not-A-Hash"}]}  # fmt: skip
        args = _sync(LOYAL, TINY, SUPPRESS, bad)
        first = await call(c, "sync_audiences", args)
        replay = await call(c, "sync_audiences", args)
        again = await call(c, "sync_audiences", {**args, "idempotency_key": key("aud")})
        # Remove wins over add for the same member; a member is removed by its id.
        churn = await call(
            c,
            "sync_audiences",
            _sync(
                {
                    "audience_id": "loyal",
                    "add": [{"external_id": "m0", "hashed_email": email(0)},
                            {"external_id": "new", "hashed_email": email(3000)}],
                    "remove": [{"external_id": "m0"}, {"external_id": "x0"}],
                }
            ),
        )  # fmt: skip
        listed = await call(c, "sync_audiences", {"idempotency_key": key("aud")})
        accounts = await call(c, "list_accounts", {})
    # The seller id (the ad servers' key-value) is derived from the account.
    [account] = [a["account_id"] for a in accounts.data["accounts"] if a.get("is_default", True)][
        :1
    ]
    assert graph["users"] == KNOWN_USERS
    assert graph["identifiers_by_type"] == {"hashed_email": KNOWN_USERS, "uid2": 100}
    for answer in (caps, first, replay, again, churn, listed):
        assert not answer.is_error, answer.data
    assert_valid("get_adcp_capabilities", caps.data)
    for answer in (first, again, churn, listed):
        assert_valid("sync_audiences", answer.data)
    assert caps.data["media_buy"]["audience_targeting"]["minimum_audience_size"] == 100
    done = _by_id(first)
    loyal = done["loyal"]
    assert (loyal["action"], loyal["status"]) == ("created", "ready")
    # 100 known e-mails, 50 unknown ones, 10 known uid2s.
    assert (loyal["uploaded_count"], loyal["total_uploaded_count"], loyal["matched_count"]) == (
        160,
        160,
        110,
    )
    assert loyal["effective_match_rate"] == round(110 / 160, 4)
    assert {b["id_type"]: (b["submitted"], b["matched"]) for b in loyal["match_breakdown"]} == {
        "hashed_email": (150, 100),
        "uid2": (10, 10),
    }
    assert loyal["seller_id"] == targeting.audience_seller_id(account, "loyal")
    assert loyal["tags"] == ["high_ltv"]
    assert (done["tiny"]["status"], done["tiny"]["matched_count"]) == ("too_small", 10)
    assert done["tiny"]["minimum_size"] == 100
    assert (done["lapsed"]["status"], done["lapsed"]["matched_count"]) == ("ready", 3)
    assert done["bad"]["action"] == "failed" and "status" not in done["bad"]
    assert done["bad"]["errors"][0]["field"] == "audiences[3].add[0]"
    assert replay.data.get("replayed") is True and _by_id(replay)["loyal"]["action"] == "created"
    assert {k: v["action"] for k, v in _by_id(again).items()} == {
        "loyal": "unchanged",
        "tiny": "unchanged",
        "lapsed": "unchanged",
        "bad": "failed",
    }
    churned = _by_id(churn)["loyal"]
    assert churned["action"] == "updated"
    # m0 and x0 gone (m0's add lost to its remove), "new" in: 159 members, 110 matched.
    assert (churned["total_uploaded_count"], churned["matched_count"]) == (159, 110)
    assert {a["audience_id"]: a["uploaded_count"] for a in listed.data["audiences"]} == {
        "lapsed": 0,
        "loyal": 0,
        "tiny": 0,
    }


async def test_publisher_users_loaded_later_are_matched_at_once(sim: SimServer) -> None:
    await _graph(sim)
    later = {
        "audience_id": "later",
        "add": [{"external_id": f"l{i}", "hashed_email": email(20_000 + i)} for i in range(120)],
    }
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        before = _by_id(await call(c, "sync_audiences", _sync(later)))["later"]
        loaded = await sim.admin(
            "POST", GRAPH, json={"users": [_user(20_000 + i) for i in range(120)]}
        )
        after = _by_id(await call(c, "sync_audiences", {"idempotency_key": key("aud")}))["later"]
        removed = await sim.admin(
            "DELETE", GRAPH, json={"user_keys": [f"u{20_000 + i}" for i in range(120)]}
        )
        gone = _by_id(await call(c, "sync_audiences", {"idempotency_key": key("aud")}))["later"]
    assert (before["status"], before["matched_count"]) == ("too_small", 0)
    assert loaded.status_code == 200 and loaded.json()["audiences_rematched"] >= 1
    assert (after["status"], after["matched_count"]) == ("ready", 120)
    assert removed.status_code == 200 and removed.json()["users"] == KNOWN_USERS
    assert (gone["status"], gone["matched_count"]) == ("too_small", 0)


async def test_the_identity_graph_refuses_bad_input(sim: SimServer) -> None:
    bad_hash = await sim.admin(
        "POST", GRAPH, json={"users": [{"user_key": "z", "hashed_email": "abc"}]}
    )
    no_id = await sim.admin("POST", GRAPH, json={"users": [{"user_key": "z"}]})
    bad_uid = await sim.admin(
        "POST",
        GRAPH,
        json={"users": [{"user_key": "z", "uids": [{"type": "cookie", "value": "1"}]}]},
    )
    twice = await sim.admin("POST", GRAPH, json={"users": [_user(1), _user(1)]})
    unknown = await sim.admin("GET", "/tenants/nobody/identities")
    for response, field in (
        (bad_hash, "users[0].hashed_email"),
        (no_id, "users[0]"),
        (bad_uid, "users[0].uids[0].type"),
        (twice, "users[1]"),
    ):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"]["field"] == field, response.text
    assert unknown.status_code == 404


async def test_packages_target_ready_audiences_of_their_account(sim: SimServer) -> None:
    await _graph(sim)
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        synced = _by_id(await call(c, "sync_audiences", _sync(LOYAL, TINY, SUPPRESS)))
        now = await sim.now()
        overlay = {"audience_include": ["loyal"], "audience_exclude": ["lapsed"]}
        booked = await call(
            c, "create_media_buy", buy_args(now, [ros(targeting_overlay=overlay), ros()])
        )
        refusals = {
            name: await call(c, "create_media_buy", buy_args(now, [ros(targeting_overlay=bad)]))
            for name, bad in {
                "too_small": {"audience_include": ["tiny"]},
                "unknown": {"audience_exclude": ["nobody"]},
                "both": {"audience_include": ["loyal"], "audience_exclude": ["loyal"]},
            }.items()
        }
        flight = {
            "product_ids": ["display_run_of_site"],
            "flight_start_date": (now + timedelta(days=20)).date().isoformat(),
            "flight_end_date": (now + timedelta(days=30)).date().isoformat(),
        }
        avails = {
            name: await call(c, "get_avails", {**flight, **extra})
            for name, extra in {
                "all": {},
                "loyal": {"targeting_overlay": {"audience_include": ["loyal"]}},
                "unknown": {"targeting_overlay": {"audience_include": ["nobody"]}},
            }.items()
        }
        assert not booked.is_error, booked.data
        mb = booked.data["media_buy_id"]
        targeted, plain = (p["package_id"] for p in booked.data["packages"])
        # The audience cannot go while a buy that has not ended targets it.
        kept = await call(c, "sync_audiences", _sync({"audience_id": "loyal", "delete": True}))
        swap = await call(
            c,
            "update_media_buy",
            {
                "media_buy_id": mb,
                "idempotency_key": key("aud"),
                "packages": [
                    {"package_id": plain, "targeting_overlay": {"audience_include": ["tiny"]}}
                ],
            },
        )
        await approve_and_push_creatives_directly(sim.settings, mb)
        await sim.advance(6)
        delivery = await call(c, "get_media_buy_delivery", {"media_buy_ids": [mb]})
    assert {k: v.data["adcp_error"]["code"] for k, v in refusals.items()} == {
        "too_small": "AUDIENCE_TOO_SMALL",
        "unknown": "REFERENCE_NOT_FOUND",
        "both": "VALIDATION_ERROR",
    }
    # Each matched loyal member is one of the publisher's 10,000 users.
    share = synced["loyal"]["matched_count"] / KNOWN_USERS
    everyone, loyal = (
        avails[n].data["packages"][0]["available_impressions"] for n in ("all", "loyal")
    )
    assert loyal > 0 and abs(loyal - everyone * share) <= 1, (everyone, loyal, share)
    assert avails["unknown"].data["adcp_error"]["code"] == "REFERENCE_NOT_FOUND"
    assert refusals["too_small"].data["adcp_error"]["field"] == (
        "packages[0].targeting_overlay.audience_include[0]"
    )
    [kept_loyal] = kept.data["audiences"]
    assert kept_loyal["action"] == "failed"
    assert (
        kept_loyal["errors"][0]["code"] == "INVALID_STATE"
        and mb in kept_loyal["errors"][0]["message"]
    )
    assert swap.is_error and swap.data["adcp_error"]["code"] == "AUDIENCE_TOO_SMALL"
    # Only the matched share of the publisher's users (1.1%) sees the targeted package:
    # the untargeted one, with the same budget and bid, delivers what its pacing asks.
    by_package = {
        p["package_id"]: p["impressions"]
        for p in delivery.data["media_buy_deliveries"][0]["by_package"]
    }
    assert 0 < by_package[targeted] < by_package[plain] / 3, by_package


def test_audiences_reach_the_ad_servers_as_key_values() -> None:
    overlay = {"audience_include": ["loyal", "vip"], "audience_exclude": ["lapsed"]}
    adapter = targeting.to_adapter(overlay, "acct_1")
    loyal, vip, lapsed = (
        targeting.audience_seller_id("acct_1", a) for a in ("loyal", "vip", "lapsed")
    )
    assert adapter.key_values == {"adcp_aud": (loyal, vip), "adcp_aud_exclude": (lapsed,)}
    assert targeting.audience_seller_id("acct_2", "loyal") != loyal  # ids are per account
    assert key_value_criteria(adapter, {}) == [
        ("adcp_aud", (loyal, vip), False),
        ("adcp_aud", (lapsed,), True),
    ]
    assert custom_targeting(Targeting(key_values=adapter.key_values), [], None) == (
        f'(adcp_aud CONTAINS "{loyal}" OR adcp_aud CONTAINS "{vip}") AND '
        f'NOT (adcp_aud CONTAINS "{lapsed}")'
    )


async def test_the_minimum_audience_size_is_a_whole_number(tmp_path: Path) -> None:
    async with admin_api(tmp_path) as api:
        await api.init_key()
        tenant = await api.create_tenant(name="Pub", subdomain="pub")
        path = f"/tenants/{tenant['tenant_id']}"
        answers = [
            await api.request("PATCH", path, json={"features": {"minimum_audience_size": value}})
            for value in (0, "500", 1_000_001, True, 2.5, 500)
        ]
    assert [a.status_code for a in answers] == [422, 422, 422, 422, 422, 200]
    assert audiences.minimum_size(answers[-1].json()["features"]) == 500


async def test_audiences_belong_to_their_account(sim: SimServer) -> None:
    await _graph(sim)
    entry = {"brand": {"domain": "other-brand.example"}, "operator": "other-brand.example",
             "billing": "advertiser"}  # fmt: skip
    vip = {
        "audience_id": "vip",
        "add": [{"external_id": f"v{i}", "hashed_email": email(4000 + i)} for i in range(100)],
    }
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        created = await call(
            c, "sync_accounts", {"accounts": [entry], "idempotency_key": key("ac")}
        )
        other = {"account_id": created.data["accounts"][0]["account_id"]}
        on_other = _by_id(await call(c, "sync_audiences", {**_sync(vip), "account": other}))
        default = _by_id(await call(c, "sync_audiences", {"idempotency_key": key("aud")}))
        now = await sim.now()
        targeted = [ros(targeting_overlay={"audience_include": ["vip"]})]
        wrong = await call(c, "create_media_buy", buy_args(now, targeted))
        right = await call(c, "create_media_buy", buy_args(now, targeted, account=other))
        # delete_missing on the other account: vip is targeted by a running buy there.
        pruned = _by_id(
            await call(
                c, "sync_audiences", {**_sync(TINY), "account": other, "delete_missing": True}
            )
        )
        # An audience sent with a bad member fails; delete_missing does not take it.
        broken = {"audience_id": "tiny", "add": [{"external_id": "z"}]}
        kept = _by_id(
            await call(
                c, "sync_audiences", {**_sync(broken), "account": other, "delete_missing": True}
            )
        )
        listed = _by_id(
            await call(c, "sync_audiences", {"idempotency_key": key("aud"), "account": other})
        )
    assert on_other["vip"]["status"] == "ready" and "vip" not in default
    assert on_other["vip"]["seller_id"] == targeting.audience_seller_id(other["account_id"], "vip")
    assert wrong.data["adcp_error"]["code"] == "REFERENCE_NOT_FOUND"
    assert not right.is_error, right.data
    assert (pruned["tiny"]["action"], pruned["vip"]["action"]) == ("created", "failed")
    assert pruned["vip"]["errors"][0]["code"] == "INVALID_STATE"
    assert (kept["tiny"]["action"], kept["vip"]["action"]) == ("failed", "failed")
    assert set(listed) == {"tiny", "vip"}


async def test_the_same_audience_synced_twice_at_once_is_one_audience(sim: SimServer) -> None:
    race = {
        "audience_id": "race",
        "add": [{"external_id": f"r{i}", "hashed_email": email(5000 + i)} for i in range(20)],
    }
    async with (
        mcp_client(sim.mcp_url, DEMO_TOKEN) as a,
        mcp_client(sim.mcp_url, DEMO_TOKEN) as b,
    ):
        answers = await asyncio.gather(*(call(c, "sync_audiences", _sync(race)) for c in (a, b)))
        listed = _by_id(await call(a, "sync_audiences", {"idempotency_key": key("aud")}))
    assert all(not x.is_error for x in answers), [x.data for x in answers]
    assert sorted(_by_id(x)["race"]["action"] for x in answers) == ["created", "unchanged"]
    assert listed["race"]["total_uploaded_count"] == 20


async def test_the_same_users_loaded_twice_at_once_are_loaded_once(sim: SimServer) -> None:
    await _graph(sim)
    users = {"users": [_user(30_000 + i) for i in range(50)]}
    first, second = await asyncio.gather(*(sim.admin("POST", GRAPH, json=users) for _ in range(2)))
    removed = await sim.admin(
        "DELETE", GRAPH, json={"user_keys": [u["user_key"] for u in users["users"]]}
    )
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    assert first.json()["users"] >= KNOWN_USERS + 50 and second.json()["users"] >= KNOWN_USERS + 50
    assert removed.json()["users"] == KNOWN_USERS
