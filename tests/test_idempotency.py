"""``services.idempotency.run_once`` with the claim deferred to the action's first write
transaction (create_media_buy): concurrent duplicates still get one answer, whichever
way they race; a request that fails writes nothing; an answered request stays answered
whatever fails after its transaction."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import select

from adcp_agent.db import statements
from adcp_agent.db.models import AuditLog
from adcp_agent.db.models_media import IdempotencyRecord
from adcp_agent.errors import AdcpError
from adcp_agent.services import idempotency
from adcp_agent.services.idempotency import Completion
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState

CALLER = Caller(tenant_id="demo", tenant_name="Demo", principal_id="demo_buyer")
REQUEST = {"packages": [{"product_id": "p", "budget": 100}]}


@pytest.fixture
def state(prepared_state: AppState) -> AppState:
    return prepared_state


async def _run(state: AppState, key: str, action: Any, request: dict | None = None) -> Any:
    return await idempotency.run_once(
        state.db, CALLER, "create_media_buy", key, request or REQUEST, action, deferred=True
    )


async def _records(state: AppState, key: str) -> list[IdempotencyRecord]:
    async with state.db.session() as session:
        found = await session.exec(select(IdempotencyRecord).where(IdempotencyRecord.key == key))
        return list(found)


async def _effect(state: AppState, completion: Completion, name: str) -> None:
    """The claim and a visible effect in one transaction, as create's provisional rows."""
    async with state.db.write() as tx:
        await completion.claim(tx)
        row = statements.build(AuditLog, tenant_id="demo", actor="test", action=name)
        await statements.insert(tx, row)


async def _effects(state: AppState) -> list[str]:
    async with state.db.session() as session:
        found = await session.exec(select(AuditLog.action).where(AuditLog.actor == "test"))
        return list(found)


async def _answer(state: AppState, completion: Completion, response: dict) -> dict:
    async with state.db.write() as tx:
        await completion.mark(tx, response)
    return response


async def test_a_duplicate_losing_the_race_to_claim_gets_the_winners_answer(
    state: AppState,
) -> None:
    """Both pass the lookup before either claims; the second to claim is rolled back
    (its effect with it) and answered with the first one's response."""
    both_looked = asyncio.Event()
    first_claimed = asyncio.Event()
    looked = 0

    async def action(completion: Completion, name: str) -> dict:
        nonlocal looked
        looked += 1
        if looked == 2:
            both_looked.set()
        await both_looked.wait()
        if name == "second":
            await first_claimed.wait()
        await _effect(state, completion, name)
        if name == "first":
            first_claimed.set()
            await asyncio.sleep(0.1)  # the loser waits for the answer meanwhile
        return await _answer(state, completion, {"media_buy_id": name})

    first, second = await asyncio.gather(
        _run(state, "race-key-000000000001", lambda c: action(c, "first")),
        _run(state, "race-key-000000000001", lambda c: action(c, "second")),
    )
    assert first == {"media_buy_id": "first"}
    assert second == {"media_buy_id": "first", "replayed": True}
    assert await _effects(state) == ["first"]


async def test_a_duplicate_failing_before_it_claims_gets_the_winners_answer(
    state: AppState,
) -> None:
    """The loser may fail validation because the winner's provisional rows took the
    inventory it checked: it is a duplicate, answered as one, not with that error."""
    first_claimed = asyncio.Event()
    second_started = asyncio.Event()

    async def first(completion: Completion) -> dict:
        await second_started.wait()
        await _effect(state, completion, "first")
        first_claimed.set()
        await asyncio.sleep(0.1)
        return await _answer(state, completion, {"media_buy_id": "first"})

    async def second(completion: Completion) -> dict:
        second_started.set()
        await first_claimed.wait()
        raise AdcpError("PRODUCT_UNAVAILABLE", "Only 0 impressions remain.", field="packages")

    results = await asyncio.gather(
        _run(state, "race-key-000000000002", first),
        _run(state, "race-key-000000000002", second),
    )
    assert results == [{"media_buy_id": "first"}, {"media_buy_id": "first", "replayed": True}]


async def test_a_failed_request_writes_nothing_and_its_key_stays_usable(state: AppState) -> None:
    key = "fail-key-000000000003"

    async def invalid(completion: Completion) -> dict:
        assert await _records(state, key) == []  # nothing was claimed up front
        raise AdcpError("VALIDATION_ERROR", "end_time must be after start_time.")

    with pytest.raises(AdcpError):
        await _run(state, key, invalid)
    assert await _records(state, key) == []

    async def fixed(completion: Completion) -> dict:
        await _effect(state, completion, "booked")
        return await _answer(state, completion, {"media_buy_id": "mb_1"})

    other = {"packages": [{"product_id": "p", "budget": 200}]}
    assert await _run(state, key, fixed, other) == {"media_buy_id": "mb_1"}
    assert [(r.status, r.response) for r in await _records(state, key)] == [
        ("completed", {"media_buy_id": "mb_1"})
    ]


async def test_an_action_without_an_earlier_write_is_claimed_by_its_answer(
    state: AppState,
) -> None:
    key = "mark-key-000000000004"

    async def answer_only(completion: Completion) -> dict:
        return await _answer(state, completion, {"task_id": "t1"})

    assert await _run(state, key, answer_only) == {"task_id": "t1"}
    assert await _run(state, key, answer_only) == {"task_id": "t1", "replayed": True}
    assert [r.status for r in await _records(state, key)] == ["completed"]


@pytest.mark.parametrize("deferred", [True, False])
async def test_a_failure_after_the_answer_is_committed_keeps_the_answer(
    state: AppState, deferred: bool
) -> None:
    """What fails after the action's final transaction (a follow-up push) must not
    release the key: the buy exists, and a retry must get it, not book another."""
    key = f"late-key-00000000000{int(deferred)}"
    runs = 0

    async def booked_then_failed(completion: Completion) -> dict:
        nonlocal runs
        runs += 1
        await _effect(state, completion, "booked")
        await _answer(state, completion, {"media_buy_id": "mb_2"})
        raise RuntimeError("the creative push failed")

    async def run() -> Any:
        return await idempotency.run_once(
            state.db, CALLER, "create_media_buy", key, REQUEST, booked_then_failed,
            deferred=deferred,
        )  # fmt: skip

    with pytest.raises(RuntimeError):
        await run()
    assert await run() == {"media_buy_id": "mb_2", "replayed": True}
    assert runs == 1


async def test_an_answer_rolled_back_with_its_transaction_releases_the_key(
    state: AppState,
) -> None:
    """``mark`` ran but its transaction did not commit (a failure after it in the same
    transaction, a failed COMMIT): nothing was answered, so a retry must run again —
    not wait for a claim nobody will ever complete."""
    key = "roll-key-000000000006"
    runs = 0

    async def answered_then_rolled_back(completion: Completion) -> dict:
        nonlocal runs
        runs += 1
        await _effect(state, completion, "provisional")
        async with state.db.write() as tx:
            await completion.mark(tx, {"media_buy_id": "mb_3"})
            if runs == 1:
                raise RuntimeError("the booking's commit failed")
        return {"media_buy_id": "mb_3"}

    with pytest.raises(RuntimeError):
        await _run(state, key, answered_then_rolled_back)
    assert await _records(state, key) == []  # released
    assert await _run(state, key, answered_then_rolled_back) == {"media_buy_id": "mb_3"}
    assert runs == 2
