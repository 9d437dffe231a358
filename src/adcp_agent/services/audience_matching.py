"""Matching audiences against the publisher's identity graph, and the graph itself.

A member matches when one of its identifiers (a hashed e-mail, a hashed phone, a
universal id of a type both sides know) is an identifier of one of the publisher's
users. An audience's figures — members, matched members, the per-identifier-type
breakdown, and the share of the publisher's known users it reaches — are computed by
the database from the rows, when the audience's members change and whenever the
publisher loads or removes users (every live audience of the tenant again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.engine import Database
from adcp_agent.db.models_audiences import Audience, PublisherIdentity
from adcp_agent.db.types import chunked, utcnow
from adcp_agent.errors import AdcpError

_KNOWN_USERS = text(
    "SELECT COUNT(DISTINCT user_key) FROM publisher_identities WHERE tenant_id = :tenant"
)
_MATCHED = (
    "EXISTS (SELECT 1 FROM publisher_identities p WHERE p.tenant_id = :tenant "
    "AND p.id_type = m.id_type AND p.value = m.value)"
)
_BY_TYPE = text(
    "SELECT m.id_type, COUNT(DISTINCT m.external_id), "
    f"COUNT(DISTINCT CASE WHEN {_MATCHED} THEN m.external_id END) "
    "FROM audience_members m WHERE m.audience_key = :key GROUP BY m.id_type"
)
_TOTALS = text(
    "SELECT COUNT(DISTINCT m.external_id), "
    f"COUNT(DISTINCT CASE WHEN {_MATCHED} THEN m.external_id END) "
    "FROM audience_members m WHERE m.audience_key = :key"
)
_MATCHED_USERS = text(
    "SELECT COUNT(DISTINCT p.user_key) FROM audience_members m JOIN publisher_identities p "
    "ON p.tenant_id = :tenant AND p.id_type = m.id_type AND p.value = m.value "
    "WHERE m.audience_key = :key"
)
MAX_USERS = 10_000


async def _run(session: AsyncSession, statement: Any, params: dict[str, Any]) -> Any:
    """A text statement in the session's transaction (its connection: the ORM's
    ``execute`` is for models)."""
    return await (await session.connection()).execute(statement, params)


_USER_KEY_MAX = 255


async def rematch(
    session: AsyncSession, audience: Audience, known_users: int | None = None
) -> None:
    """Recompute ``audience``'s figures from its members (in ``session``'s transaction)."""
    params = {"tenant": audience.tenant_id, "key": audience.id}
    if known_users is None:
        known_users = int((await _run(session, _KNOWN_USERS, params)).scalar_one())
    members, matched = (await _run(session, _TOTALS, params)).one()
    breakdown = {
        str(id_type): [int(submitted), int(hits)]
        for id_type, submitted, hits in (await _run(session, _BY_TYPE, params)).all()
    }
    users = int((await _run(session, _MATCHED_USERS, params)).scalar_one()) if matched else 0
    audience.member_count, audience.matched_count = int(members), int(matched)
    audience.match_breakdown = breakdown
    audience.reach_share = min(1.0, users / known_users) if known_users else 0.0
    session.add(audience)


async def rematch_tenant(session: AsyncSession, tenant_id: str) -> int:
    """Every live audience of the tenant matched again; how many."""
    known = int((await _run(session, _KNOWN_USERS, {"tenant": tenant_id})).scalar_one())
    audiences = (
        await session.exec(
            select(Audience).where(
                Audience.tenant_id == tenant_id, col(Audience.deleted_at).is_(None)
            )
        )
    ).all()
    for audience in audiences:
        await rematch(session, audience, known)
        audience.updated_at = utcnow()
    return len(audiences)


@dataclass
class GraphSummary:
    users: int
    identifiers: dict[str, int]
    audiences_rematched: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "identifiers_by_type": self.identifiers,
            "audiences_rematched": self.audiences_rematched,
        }


async def summary(db: Database, tenant_id: str) -> GraphSummary:
    async with db.reading() as session:
        users = int((await _run(session, _KNOWN_USERS, {"tenant": tenant_id})).scalar_one())
        rows = await _run(
            session,
            text(
                "SELECT id_type, COUNT(*) FROM publisher_identities WHERE tenant_id = :tenant "
                "GROUP BY id_type ORDER BY id_type"
            ),
            {"tenant": tenant_id},
        )
        return GraphSummary(users, {str(t): int(n) for t, n in rows.all()})


def _user_rows(
    users: Sequence[Any], tenant_id: str, identifiers_of: Any
) -> tuple[list[str], list[dict[str, str]]]:
    """The users' keys and identifier rows; raises on the first bad one."""
    if not isinstance(users, list) or not users:
        raise AdcpError("VALIDATION_ERROR", "users must be a non-empty list.", field="users")
    if len(users) > MAX_USERS:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"At most {MAX_USERS:,} users a call; send the rest in further calls.",
            field="users",
        )
    keys: list[str] = []
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    for i, user in enumerate(users):
        where = f"users[{i}]"
        if not isinstance(user, dict):
            raise AdcpError("VALIDATION_ERROR", "A user is an object.", field=where)
        key = user.get("user_key")
        if not isinstance(key, str) or not key.strip() or len(key) > _USER_KEY_MAX:
            raise AdcpError(
                "VALIDATION_ERROR",
                f"user_key is 1 to {_USER_KEY_MAX} characters.",
                field=f"{where}.user_key",
            )
        if key in seen:
            raise AdcpError("VALIDATION_ERROR", f"User '{key}' is sent twice.", field=where)
        keys.append(key)
        seen.add(key)
        for id_type, value in identifiers_of(user, where):
            rows.append(
                {"tenant_id": tenant_id, "id_type": id_type, "value": value, "user_key": key}
            )
    return keys, rows


async def load_users(
    db: Database, tenant_id: str, users: Sequence[Any], identifiers_of: Any
) -> GraphSummary:
    """Upsert the publisher's users (each user's identifiers replaced by the ones sent),
    then match every live audience again."""
    keys, rows = _user_rows(users, tenant_id, identifiers_of)
    # The same identifier may belong to several users (a shared family e-mail).
    unique = list({(r["id_type"], r["value"], r["user_key"]): r for r in rows}.values())
    try:
        rematched = await _replace_users(db, tenant_id, keys, unique)
    except IntegrityError:  # the same users loaded by another call at the same time: again
        rematched = await _replace_users(db, tenant_id, keys, unique)
    out = await summary(db, tenant_id)
    out.audiences_rematched = rematched
    return out


async def _replace_users(
    db: Database, tenant_id: str, keys: list[str], rows: list[dict[str, str]]
) -> int:
    async with db.transaction() as session:
        await _drop_users(session, tenant_id, keys)
        conn = await session.connection()
        for part in chunked(rows, 1000):
            await conn.execute(insert(PublisherIdentity.__table__), list(part))  # type: ignore[arg-type]
        return await rematch_tenant(session, tenant_id)


async def remove_users(db: Database, tenant_id: str, user_keys: Sequence[str]) -> GraphSummary:
    async with db.transaction() as session:
        await _drop_users(session, tenant_id, list(user_keys))
        rematched = await rematch_tenant(session, tenant_id)
    out = await summary(db, tenant_id)
    out.audiences_rematched = rematched
    return out


async def _drop_users(session: AsyncSession, tenant_id: str, keys: Sequence[str]) -> None:
    for part in chunked(list(keys)):
        await session.exec(
            delete(PublisherIdentity).where(  # type: ignore[call-overload]
                col(PublisherIdentity.tenant_id) == tenant_id,
                col(PublisherIdentity.user_key).in_(part),
            )
        )
