"""``statements.together``: writes sent as one statement on PostgreSQL (one round trip
instead of one each), one by one on SQLite — and either way the same outcome: what
commits, what a read inside the block sees, which error a duplicate key raises, a row
count checked with ``expect``. And what it is for: a booking's round trips."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError

from adcp_agent.config import Settings
from adcp_agent.db import statements
from adcp_agent.db.models import AuditLog
from adcp_agent.db.models_events import NotificationDraft, OutboxEvent
from adcp_agent.state import AppState
from tests.databases import Backend, database_settings
from tests.media_helpers import non_guaranteed
from tests.support import DEMO_TOKEN
from tests.tenant_admin_support import ServedApp, served_app
from tests.test_statements import _RENAME_ONE as _RENAME

_AUDITS = AuditLog.__table__.c  # type: ignore[attr-defined]
_BY_ACTOR = (
    statements.insert_of(AuditLog).table.select().where(_AUDITS.actor == bindparam("who"))
).order_by(_AUDITS.id)


@pytest.fixture
def state(prepared_state: AppState) -> AppState:
    return prepared_state


def _audit(action: str, actor: str = "test") -> AuditLog:
    return statements.build(AuditLog, tenant_id="demo", actor=actor, action=action)


def _event(event_id: str, dedupe_key: str | None = None) -> OutboxEvent:
    return statements.build(OutboxEvent, event_id=event_id, tenant_id="demo", event_type="x",
                            status="pending", dedupe_key=dedupe_key)  # fmt: skip


async def _actions(state: AppState, actor: str = "test") -> list[str]:
    async with state.db.write() as tx:
        return [r.action for r in await statements.fetch(tx, _BY_ACTOR, {"who": actor})]


def test_combined_writes_number_their_parameters_in_turn() -> None:
    sql, args = statements.combined(
        [
            ("INSERT INTO a (x, y) VALUES ($1::VARCHAR, $2::INTEGER)", ["p", 1], None),
            ("UPDATE b SET z=$1::VARCHAR WHERE b.k = $2::VARCHAR", ["q", "k"], 1),
            ("INSERT INTO c (w) VALUES ($1::JSON) RETURNING c.id", ["{}"], 1),
        ]
    )
    assert sql == (
        "WITH s0 AS (INSERT INTO a (x, y) VALUES ($1::VARCHAR, $2::INTEGER)), "
        "s1 AS (UPDATE b SET z=$3::VARCHAR WHERE b.k = $4::VARCHAR RETURNING 1), "
        "s2 AS (INSERT INTO c (w) VALUES ($5::JSON) RETURNING c.id) "
        "SELECT 0, (SELECT count(*) FROM s1), (SELECT count(*) FROM s2)"
    )
    assert args == ["p", 1, "q", "k", "{}"]


def test_only_plain_writes_are_combined() -> None:
    """A write whose text could hold a "$" that is not a parameter (a literal), a read,
    or one whose placeholders do not match its parameters runs on its own."""
    combinable = statements._combinable  # noqa: SLF001 - the rule itself
    assert combinable("INSERT INTO a (x) VALUES ($1::VARCHAR)", ["v"])
    assert combinable("DELETE FROM a WHERE a.x = $1::VARCHAR", ["v"])
    assert not combinable("UPDATE a SET x='$1' WHERE a.y = $1::VARCHAR", ["v"])
    assert not combinable("SELECT a.x FROM a WHERE a.y = $1::VARCHAR", ["v"])
    assert not combinable("INSERT INTO a (x, y) VALUES ($1::VARCHAR, $3::VARCHAR)", ["v", "w"])


async def test_writes_sent_together_commit_with_the_transaction(state: AppState) -> None:
    async with state.db.write() as tx:
        async with statements.together(tx):
            await statements.insert(tx, _audit("one"))
            await statements.insert(tx, _event("evt_1"))
            draft = statements.build(NotificationDraft, draft_id="d1", tenant_id="demo",
                                     event_id="evt_1", event_type="x")  # fmt: skip
            await statements.insert(tx, draft)  # its event's row is in the same batch
            await statements.insert(tx, _audit("two"))  # after "one", in id order too
            await statements.insert(tx, _audit("three"), _audit("four"))  # several rows
            # A read in the block sees the writes before it.
            seen = [r.action for r in await statements.fetch(tx, _BY_ACTOR, {"who": "test"})]
            await statements.execute(tx, _RENAME, {"was": "two", "to": "2"}, expect=1)
        assert seen == ["one", "two", "three", "four"]
    assert await _actions(state) == ["one", "2", "three", "four"]
    with pytest.raises(RuntimeError, match="the caller fails"):
        async with state.db.write() as tx, statements.together(tx):
            await statements.insert(tx, _audit("lost"))
            raise RuntimeError("the caller fails after writing")
    assert await _actions(state) == ["one", "2", "three", "four"]


async def test_a_duplicate_key_in_a_block_raises_integrity_error_and_keeps_nothing(
    state: AppState,
) -> None:
    async with state.db.write() as tx:
        await statements.insert(tx, _event("evt_a", dedupe_key="once"))
    with pytest.raises(IntegrityError):
        async with state.db.write() as tx, statements.together(tx):
            await statements.insert(tx, _audit("before the duplicate"))
            await statements.insert(tx, _event("evt_b", dedupe_key="once"))
            await statements.insert(tx, _audit("after the duplicate"))
    assert await _actions(state) == []


async def test_a_row_count_other_than_expected_fails_the_transaction(
    state: AppState,
) -> None:
    async with state.db.write() as tx:
        await statements.insert(tx, _audit("one"))
    with pytest.raises(statements.RowCountError, match="0 rows changed, 1 expected"):
        async with state.db.write() as tx, statements.together(tx):
            await statements.execute(tx, _RENAME, {"was": "one", "to": "1"}, expect=1)
            await statements.execute(tx, _RENAME, {"was": "absent", "to": "x"}, expect=1)
    assert await _actions(state) == ["one"]  # the first rename was rolled back too
    # Outside a block a count is returned (and checked) as the statement runs.
    async with state.db.write() as tx:
        assert await statements.execute(tx, _RENAME, {"was": "one", "to": "1"}) == 1
        with pytest.raises(statements.RowCountError):
            await statements.execute(tx, _RENAME, {"was": "one", "to": "x"}, expect=1)


class _Statements:
    """The SQL each asyncpg connection is sent, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    def of_transaction_writing(self, table: str) -> list[str]:
        """The statements of the transaction that inserted into ``table``, from BEGIN
        to COMMIT, by their first words."""
        conn = next(c for c, sql in self.sent if sql.startswith(f"INSERT INTO {table} "))
        mine = [sql for c, sql in self.sent if c == conn]
        at = max(i for i, sql in enumerate(mine) if sql.startswith(f"INSERT INTO {table} "))
        begin = max(i for i in range(at) if mine[i].startswith("BEGIN"))
        end = next(i for i in range(at, len(mine)) if mine[i] == "COMMIT")
        return [" ".join(sql.split()[:3]) for sql in mine[begin : end + 1]]

    def writes_in(self, statement_start: str) -> list[str]:
        """The tables the last statement starting so writes, in its order."""
        sql = next(q for _, q in reversed(self.sent) if q.startswith(statement_start))
        return re.findall(r"(?:INSERT INTO|UPDATE) (\w+)", sql)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch, backend: Backend) -> Iterator[_Statements]:
    if backend != "postgres":
        pytest.skip("round trips are PostgreSQL's")
    import asyncpg

    record = _Statements()
    for name in ("execute", "fetch", "executemany"):
        original = getattr(asyncpg.Connection, name)

        def counted(self: Any, query: str, *args: Any, _o: Any = original, **kw: Any) -> Any:
            record.sent.append((id(self), query))
            return _o(self, query, *args, **kw)

        monkeypatch.setattr(asyncpg.Connection, name, counted)
    yield record


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[ServedApp]:
    settings = Settings(data_dir=tmp_path, demo_token=DEMO_TOKEN, outbox_worker=False,
                        **database_settings(tmp_path))  # fmt: skip
    headers = {"accept": "application/json, text/event-stream",
               "content-type": "application/json"}  # fmt: skip
    async with served_app(settings, headers=headers) as app:
        yield app


async def test_a_booking_sends_what_it_records_in_one_statement(
    served: ServedApp, sent: _Statements
) -> None:
    """After the claim and the buy, a booking's packages, audit row, event, email draft
    and idempotency answer go in one round trip, not one each (the event's destinations
    were read before the transaction)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "create_media_buy", "arguments": non_guaranteed()}}  # fmt: skip
    auth = {"authorization": f"Bearer {DEMO_TOKEN}"}
    answer = (await served.http.post("/mcp/", content=json.dumps(body), headers=auth)).json()
    assert answer["result"]["structuredContent"]["status"] == "completed", answer
    assert sent.of_transaction_writing("media_buys") == [
        "BEGIN",
        "INSERT INTO idempotency_records",
        "INSERT INTO media_buys",
        "WITH s0 AS",  # packages, audit row, event, draft, the answer
        "COMMIT",
    ]
    assert sent.writes_in("WITH s0 AS") == [
        "packages",
        "audit_logs",
        "outbox_events",
        "notification_drafts",
        "idempotency_records",
    ]
