"""First-party audiences (AdCP ``sync_audiences``) and their use in targeting.

A buyer keeps CRM audiences on its accounts: upserted by ``audience_id``, members
added and removed as deltas (remove wins over add for the same ``external_id``),
deleted one by one or with ``delete_missing``. Each is matched against the
publisher's identity graph (``audience_matching``) as it changes: ``ready`` once its
matched members reach the publisher's minimum (``features.minimum_audience_size``,
default 100), ``too_small`` before; a suppression list is ready at any size.

Packages target audiences with ``targeting_overlay.audience_include`` (only matched
members are eligible: the audience must be ready) and ``audience_exclude`` — ids of
the buy's account's audiences. The ad servers get them as key-values (``adcp_aud``,
``adcp_aud_exclude``: the audiences' seller ids), and delivery reaches the matched
share of the publisher's users (or the rest, for an exclusion).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.engine import Database
from adcp_agent.db.models import Tenant
from adcp_agent.db.models_accounts import Account
from adcp_agent.db.models_audiences import Audience, AudienceMember
from adcp_agent.db.models_media import MediaBuy, Package
from adcp_agent.db.types import chunked
from adcp_agent.errors import AdcpError
from adcp_agent.services import accounts, audit
from adcp_agent.services.audience_matching import rematch
from adcp_agent.services.idempotency import Completion
from adcp_agent.services.identity import Caller
from adcp_agent.services.targeting import audience_seller_id

AUDIENCE_TYPES = ("crm", "suppression", "lookalike_seed")
CONSENT_BASES = ("consent", "legitimate_interest", "contract", "legal_obligation")
HASHED_TYPES = ("hashed_email", "hashed_phone")
UID_TYPES = (
    "rampid", "rampid_derived", "id5", "uid2", "euid", "pairid", "maid", "hashed_email",
    "publisher_first_party",
)  # fmt: skip
# AdCP's match-id-type names (the breakdown's); other uid types are reported as "other".
MATCH_ID_TYPES = (
    "hashed_email", "hashed_phone", "rampid", "id5", "uid2", "euid", "pairid", "maid",
)  # fmt: skip
MINIMUM_SIZE = "minimum_audience_size"
DEFAULT_MINIMUM = 100
MAX_MEMBERS = 100_000
MAX_AUDIENCES = 1_000
INCLUDE, EXCLUDE = "audience_include", "audience_exclude"
_ID = re.compile(r"^[\x21-\x7E]{1,255}$")
_HASH = re.compile(r"^[a-f0-9]{64}$")
_UNFINISHED = ("provisioning", "pending_approval", "live", "paused")


seller_key = audience_seller_id


def minimum_size(features: dict[str, Any] | None) -> int:
    value = (features or {}).get(MINIMUM_SIZE)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else DEFAULT_MINIMUM


def check_minimum_feature(features: dict[str, Any] | None) -> None:
    """For tenant management: the feature, when set, is a size from 1 to 1,000,000."""
    value = (features or {}).get(MINIMUM_SIZE)
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000
    ):
        raise ValueError(f"features.{MINIMUM_SIZE} must be a whole number from 1 to 1,000,000")


def identifiers(entry: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """A member's (or a publisher user's) identifiers as (id_type, value): the hashed
    e-mail and phone (lowercase SHA-256 hex) and universal ids of known types."""
    out: list[tuple[str, str]] = []
    for id_type in HASHED_TYPES:
        value = entry.get(id_type)
        if value is None:
            continue
        if not isinstance(value, str) or not _HASH.match(value):
            raise AdcpError(
                "VALIDATION_ERROR",
                f"{id_type} must be a SHA-256 hash in lowercase hex (64 characters), of the "
                + ("lowercased, trimmed e-mail." if id_type == "hashed_email" else "E.164 number."),
                field=f"{where}.{id_type}",
            )
        out.append((id_type, value))
    uids = entry.get("uids")
    if uids is not None:
        if not isinstance(uids, list) or not uids:
            raise AdcpError(
                "VALIDATION_ERROR", "uids must be a non-empty list.", field=f"{where}.uids"
            )
        for j, uid in enumerate(uids):
            at = f"{where}.uids[{j}]"
            kind = uid.get("type") if isinstance(uid, dict) else None
            value = uid.get("value") if isinstance(uid, dict) else None
            if kind not in UID_TYPES:
                raise AdcpError(
                    "VALIDATION_ERROR",
                    f"Universal id type {kind!r} is not matched here.",
                    field=f"{at}.type",
                    suggestion=f"Send: {', '.join(UID_TYPES)}.",
                )
            if not isinstance(value, str) or not value.strip() or len(value) > 512:
                raise AdcpError(
                    "VALIDATION_ERROR", "A uid value is 1 to 512 characters.", field=f"{at}.value"
                )
            if kind == "hashed_email" and not _HASH.match(value):
                raise AdcpError(
                    "VALIDATION_ERROR",
                    "A hashed_email uid is a SHA-256 hash in lowercase hex.",
                    field=f"{at}.value",
                )
            out.append((str(kind), value.strip()))
    if not out:
        raise AdcpError(
            "VALIDATION_ERROR",
            "Each entry needs at least one identifier: hashed_email, hashed_phone or uids.",
            field=where,
        )
    return list(dict.fromkeys(out))


@dataclass
class _Parsed:
    audience_id: str
    delete: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    add: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    remove: set[str] = field(default_factory=set)


Render = Callable[[Account, "list[AudienceResult]", int], dict[str, Any]]


@dataclass
class AudienceResult:
    audience_id: str
    action: str  # created | updated | unchanged | deleted | failed
    audience: Audience | None = None
    uploaded: int = 0
    errors: list[AdcpError] = field(default_factory=list)


def _text(entry: dict[str, Any], name: str, limit: int, where: str) -> str | None:
    value = entry.get(name)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise AdcpError(
            "VALIDATION_ERROR",
            f"{name} is text of at most {limit} characters.",
            field=f"{where}.{name}",
        )
    return value


def _choice(entry: dict[str, Any], name: str, allowed: Sequence[str], where: str) -> str | None:
    value = entry.get(name)
    if value is not None and value not in allowed:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"{name} {value!r} is not one of: {', '.join(allowed)}.",
            field=f"{where}.{name}",
        )
    return value


def _members(
    entry: dict[str, Any], name: str, where: str
) -> list[tuple[str, list[tuple[str, str]]]]:
    value = entry.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        raise AdcpError(
            "VALIDATION_ERROR", f"{name} must be a non-empty list.", field=f"{where}.{name}"
        )
    out = []
    for j, member in enumerate(value):
        at = f"{where}.{name}[{j}]"
        if not isinstance(member, dict):
            raise AdcpError("VALIDATION_ERROR", "A member is an object.", field=at)
        external_id = member.get("external_id")
        if not isinstance(external_id, str) or not _ID.match(external_id):
            raise AdcpError(
                "VALIDATION_ERROR",
                "external_id is 1 to 255 printable characters without spaces.",
                field=f"{at}.external_id",
            )
        # To remove a member its external_id is enough.
        ids = identifiers(member, at) if name == "add" else []
        out.append((external_id, ids))
    return out


def _parse(entry: Any, where: str) -> _Parsed:
    if not isinstance(entry, dict):
        raise AdcpError("VALIDATION_ERROR", "An audience is an object.", field=where)
    audience_id = entry.get("audience_id")
    if not isinstance(audience_id, str) or not _ID.match(audience_id):
        raise AdcpError(
            "VALIDATION_ERROR",
            "audience_id is 1 to 255 printable characters without spaces.",
            field=f"{where}.audience_id",
        )
    if entry.get("delete") is True:
        return _Parsed(audience_id, delete=True)
    tags = entry.get("tags")
    if tags is not None and (
        not isinstance(tags, list)
        or len(tags) > 50
        or not all(isinstance(t, str) and 0 < len(t) <= 100 for t in tags)
        or len(set(tags)) != len(tags)
    ):
        raise AdcpError(
            "VALIDATION_ERROR",
            "tags are up to 50 distinct strings of 1 to 100 characters.",
            field=f"{where}.tags",
        )
    meta = {
        "name": _text(entry, "name", 255, where),
        "description": _text(entry, "description", 1000, where),
        "audience_type": _choice(entry, "audience_type", AUDIENCE_TYPES, where),
        "tags": tags,
        "consent_basis": _choice(entry, "consent_basis", CONSENT_BASES, where),
    }
    parsed = _Parsed(audience_id, meta={k: v for k, v in meta.items() if v is not None})
    parsed.remove = {external_id for external_id, _ in _members(entry, "remove", where)}
    for external_id, ids in _members(entry, "add", where):
        if external_id not in parsed.remove:  # remove wins
            parsed.add[external_id] = list(dict.fromkeys(parsed.add.get(external_id, []) + ids))
    return parsed


def count_members(entries: Sequence[Any] | None) -> int:
    total = 0
    for entry in entries or []:
        if isinstance(entry, dict):
            for name in ("add", "remove"):
                value = entry.get(name)
                total += len(value) if isinstance(value, list) else 0
    return total


async def sync(
    db: Database,
    caller: Caller,
    account_ref: dict[str, Any] | None,
    entries: Sequence[Any] | None,
    *,
    delete_missing: bool,
    now: datetime,
    render: Render,
    completion: Completion | None = None,
) -> dict[str, Any]:
    """Apply the sync to the account's audiences (None: just list them) and answer
    ``render(account, results, minimum matched size)``, recorded as the idempotent
    answer (``completion``) in the transaction that commits the changes."""
    account = await accounts.resolve(db, caller, account_ref)
    if entries is not None and len(entries) > MAX_AUDIENCES:
        raise AdcpError(
            "VALIDATION_ERROR", f"At most {MAX_AUDIENCES} audiences a call.", field="audiences"
        )
    if count_members(entries) > MAX_MEMBERS:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"At most {MAX_MEMBERS:,} members (added and removed) a call; send the rest as "
            "further add/remove deltas.",
            field="audiences",
        )
    # Checked before the write transaction: a large list takes a while.
    checked: list[tuple[int, Any, _Parsed | AdcpError]] = []
    for i, entry in enumerate(entries or []):
        try:
            checked.append((i, entry, _parse(entry, f"audiences[{i}]")))
        except AdcpError as exc:
            checked.append((i, entry, exc))
    try:
        return await _apply(
            db, caller, account, checked, entries is None, delete_missing, now, render, completion
        )
    except IntegrityError:  # the same audience created by a sync at the same time: again
        return await _apply(
            db, caller, account, checked, entries is None, delete_missing, now, render, completion
        )


async def _apply(
    db: Database,
    caller: Caller,
    account: Account,
    checked: list[tuple[int, Any, _Parsed | AdcpError]],
    listing: bool,
    delete_missing: bool,
    now: datetime,
    render: Render,
    completion: Completion | None,
) -> dict[str, Any]:
    async with db.transaction() as session:
        tenant = await session.get(Tenant, caller.tenant_id)
        minimum = minimum_size(tenant.features if tenant else None)
        stored = {
            a.audience_id: a
            for a in (
                await session.exec(
                    select(Audience).where(
                        Audience.tenant_id == caller.tenant_id,
                        Audience.account_id == account.account_id,
                    )
                )
            ).all()
        }
        live = {k: a for k, a in stored.items() if a.deleted_at is None}
        if listing:
            listed = [AudienceResult(k, "unchanged", a) for k, a in sorted(live.items())]
            return await _answer(session, render(account, listed, minimum), completion)
        results: list[AudienceResult] = []
        sent: set[str] = set()
        for i, entry, parsed in checked:
            where = f"audiences[{i}]"
            try:
                if isinstance(parsed, AdcpError):
                    named = entry.get("audience_id") if isinstance(entry, dict) else None
                    if isinstance(named, str):
                        sent.add(named)  # failed, but sent: delete_missing keeps it
                    raise parsed
                if parsed.audience_id in sent:
                    raise AdcpError(
                        "VALIDATION_ERROR",
                        f"Audience '{parsed.audience_id}' is sent twice.",
                        field=f"{where}.audience_id",
                    )
                sent.add(parsed.audience_id)
                if parsed.delete:
                    results.append(
                        await _delete(session, live.get(parsed.audience_id), parsed, where, now)
                    )
                else:
                    results.append(
                        await _upsert(
                            session, caller, account, stored.get(parsed.audience_id), parsed, now
                        )
                    )
            except AdcpError as exc:
                name = entry.get("audience_id") if isinstance(entry, dict) else None
                results.append(AudienceResult(str(name or where), "failed", errors=[exc]))
        if delete_missing:
            for audience_id, audience in sorted(live.items()):
                if audience_id not in sent:
                    try:
                        results.append(
                            await _delete(
                                session, audience, _Parsed(audience_id, True), "audiences", now
                            )
                        )
                    except AdcpError as exc:
                        results.append(AudienceResult(audience_id, "failed", errors=[exc]))
        changed = {
            r.audience_id: r.action
            for r in results
            if r.action in ("created", "updated", "deleted")
        }
        if changed:
            await session.flush()
            await audit.record(
                session,
                caller,
                "audiences.sync",
                target_type="account",
                target_id=account.account_id,
                details={"changes": changed},
            )
        return await _answer(session, render(account, results, minimum), completion)


async def _answer(
    session: AsyncSession, response: dict[str, Any], completion: Completion | None
) -> dict[str, Any]:
    if completion is not None:
        await completion.mark(session, response)
    return response


async def _delete(
    session: AsyncSession, audience: Audience | None, parsed: _Parsed, where: str, now: datetime
) -> AudienceResult:
    if audience is None:
        raise AdcpError(
            "REFERENCE_NOT_FOUND",
            f"Audience '{parsed.audience_id}' is not on this account.",
            field=f"{where}.audience_id",
        )
    buys = await targeted_by(session, audience, now)
    if buys:
        raise AdcpError(
            "INVALID_STATE",
            f"Audience '{audience.audience_id}' is targeted by media buys that have not ended: "
            f"{', '.join(buys)}.",
            field=f"{where}.delete",
            suggestion="Remove it from those packages' targeting_overlay first, or keep it.",
            details={"media_buy_ids": buys},
        )
    await session.exec(
        delete(AudienceMember).where(col(AudienceMember.audience_key) == audience.id)
    )  # type: ignore[call-overload]
    audience.deleted_at = audience.updated_at = now
    audience.member_count = audience.matched_count = 0
    audience.match_breakdown, audience.reach_share = {}, 0.0
    session.add(audience)
    return AudienceResult(audience.audience_id, "deleted", audience)


async def _upsert(
    session: AsyncSession,
    caller: Caller,
    account: Account,
    audience: Audience | None,
    parsed: _Parsed,
    now: datetime,
) -> AudienceResult:
    created = audience is None or audience.deleted_at is not None
    if audience is None:
        audience = Audience(
            tenant_id=caller.tenant_id,
            account_id=account.account_id,
            audience_id=parsed.audience_id,
            seller_id=seller_key(account.account_id, parsed.audience_id),
        )
        session.add(audience)
        await session.flush()
    elif created:  # deleted before: back, as new
        for name in ("name", "description", "audience_type", "tags", "consent_basis"):
            setattr(audience, name, None)
        audience.deleted_at = None
    changed = created
    for name, value in parsed.meta.items():
        if getattr(audience, name) != value:
            setattr(audience, name, value)
            changed = True
    key = audience.id
    assert key is not None
    conn = await session.connection()
    for part in chunked(sorted(parsed.remove)):
        gone = await conn.execute(
            delete(AudienceMember).where(
                col(AudienceMember.audience_key) == key, col(AudienceMember.external_id).in_(part)
            )
        )
        changed = changed or bool(gone.rowcount)
    if parsed.add:
        current: dict[str, set[tuple[str, str]]] = {}
        # (A new audience, or one deleted before, has no members to compare with.)
        for part in [] if created else chunked(sorted(parsed.add)):
            rows = await conn.execute(
                select(
                    AudienceMember.external_id, AudienceMember.id_type, AudienceMember.value
                ).where(
                    col(AudienceMember.audience_key) == key,
                    col(AudienceMember.external_id).in_(part),
                )
            )
            for external_id, id_type, value in rows.all():
                current.setdefault(external_id, set()).add((id_type, value))
        different = [e for e, ids in parsed.add.items() if current.get(e) != set(ids)]
        for part in chunked(sorted(e for e in different if e in current)):
            await conn.execute(
                delete(AudienceMember).where(
                    col(AudienceMember.audience_key) == key,
                    col(AudienceMember.external_id).in_(part),
                )
            )
        rows_in = [
            {"audience_key": key, "external_id": e, "id_type": t, "value": v}
            for e in different
            for t, v in parsed.add[e]
        ]
        for part in chunked(rows_in, 1000):
            await conn.execute(insert(AudienceMember.__table__), list(part))  # type: ignore[arg-type]
        changed = changed or bool(different)
    if changed:
        await rematch(session, audience)
        audience.last_synced_at = audience.updated_at = now
        session.add(audience)
    action = "created" if created else "updated" if changed else "unchanged"
    return AudienceResult(parsed.audience_id, action, audience, uploaded=len(parsed.add))


def status_of(audience: Audience, minimum: int) -> str:
    if audience.audience_type == "suppression" or audience.matched_count >= minimum:
        return "ready"
    return "too_small"


def in_overlay(overlay: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """The audience ids an overlay includes and excludes."""
    data = overlay or {}
    return (
        [a for a in data.get(INCLUDE) or [] if isinstance(a, str)],
        [a for a in data.get(EXCLUDE) or [] if isinstance(a, str)],
    )


async def targeted_by(session: AsyncSession, audience: Audience, now: datetime) -> list[str]:
    """The account's media buys that have not ended with a package targeting it."""
    rows = await session.exec(
        select(MediaBuy.media_buy_id, Package.targeting)
        .join(Package, col(Package.media_buy_id) == col(MediaBuy.media_buy_id))
        .where(
            MediaBuy.tenant_id == audience.tenant_id,
            MediaBuy.account_id == audience.account_id,
            col(MediaBuy.state).in_(_UNFINISHED),
            col(MediaBuy.end_time) > now,
        )
    )
    return sorted(
        {
            buy_id
            for buy_id, targeting in rows.all()
            if any(audience.audience_id in ids for ids in in_overlay(targeting))
        }
    )
