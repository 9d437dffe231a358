"""Reading media buys back, scoped to the caller (and optionally one account).

Read as plain rows (``Database.read`` for the prebuilt statements), not ORM objects in
a session: a row has the model's column attributes (typed by the column types, JSON
decoded, timestamps in UTC) and no identity map, unit of work or lazy loading, which a
read-only view never needs and which cost more than the statements (~0.3 ms of a
two-statement read). The rows are read-only: code that changes a buy loads it in a
session of its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select

from adcp_agent.db import statements
from adcp_agent.db.id_lists import ByIds
from adcp_agent.db.models_media import MediaBuy, Package
from adcp_agent.db.types import chunked
from adcp_agent.services import accounts, buy_state
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState

_BUYS, _PACKAGES = MediaBuy.__table__, Package.__table__  # type: ignore[attr-defined]
# Built once: a statement built per call costs more to build and to key for the
# compiled-statement cache than to run (~0.3 ms of a delivery report).
_OWNED = (
    _BUYS.c.tenant_id == bindparam("tenant"),
    _BUYS.c.principal_id == bindparam("principal"),
    _BUYS.c.state != "provisioning",
)
_BUYS_BY_ID = ByIds(lambda in_ids: select(_BUYS).where(*_OWNED, in_ids(_BUYS.c.media_buy_id)))
_PACKAGES_OF = ByIds(
    lambda in_ids: (
        select(_PACKAGES)
        .where(in_ids(_PACKAGES.c.media_buy_id))
        .order_by(_PACKAGES.c.created_at, _PACKAGES.c.package_id)
    )
)


# One buy as a detached model, by id (``Database.read_models``), for code that has
# checked whose it is or acts for the system.
BUY_ROW = select(*statements.model_columns(MediaBuy)).where(
    _BUYS.c.media_buy_id == bindparam("buy")
)
# ... and locked for the rest of a write transaction on PostgreSQL (a change computed
# from it, e.g. its next revision, then counts what others committed before it).
# SQLite's write transactions run one at a time already (no FOR UPDATE there).
BUY_ROW_LOCKED = BUY_ROW.with_for_update()


@dataclass
class BuyView:
    buy: MediaBuy  # a read-only row with MediaBuy's columns
    packages: list[Package]  # rows with Package's columns


async def list_buys(
    state: AppState,
    caller: Caller,
    *,
    media_buy_ids: Sequence[str] = (),
    statuses: Sequence[str] = (),
    account_ref: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> tuple[list[BuyView], list[str]]:
    """The caller's buys, newest first, plus requested ids that were not found.
    Buys awaiting approval are unconfirmed: listed only when asked for by id. Sandbox
    buys are kept apart: a listing that names no account shows production buys only;
    sandbox buys are listed when their account is named (or asked for by id)."""
    views, missing, _total = await page_buys(
        state,
        caller,
        media_buy_ids=media_buy_ids,
        statuses=statuses,
        account_ref=account_ref,
        now=now,
    )
    return views, missing


async def page_buys(
    state: AppState,
    caller: Caller,
    *,
    media_buy_ids: Sequence[str] = (),
    statuses: Sequence[str] = (),
    account_ref: dict[str, Any] | None = None,
    now: datetime | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[list[BuyView], list[str], int]:
    """``list_buys`` one page at a time, filtered and paged in the database:
    (the page's buys, requested ids not found, how many buys match in all)."""
    caller.require_principal()
    now = now or state.clock.now()
    account_id = None
    if account_ref is not None:
        account_id = (await accounts.resolve(state.db, caller, account_ref)).account_id
    owner = {"tenant": caller.tenant_id, "principal": caller.principal_id}
    filters = []  # beyond ownership
    if account_id:
        filters.append(_BUYS.c.account_id == account_id)
    elif not media_buy_ids:
        filters.append(_BUYS.c.sandbox.is_(False))
    if not media_buy_ids:
        filters.append(_BUYS.c.state != "pending_approval")
    if statuses:
        filters.append(buy_state.status_clause(statuses, now))
    where = [*_OWNED, *filters]
    db = state.db
    if media_buy_ids:
        # At most 1000 ids (the tools cap them): fetch them by primary key and order
        # here; an ORDER BY would invite the planner to walk the listing index.
        stmt, params = _BUYS_BY_ID.bind(media_buy_ids, **owner)
        if filters:
            async with db.engine.connect() as conn:  # a statement of this call's own
                rows = (await conn.execute(stmt.where(*filters), params)).all()
        else:
            rows = await db.read(stmt, params)
        matched = sorted(rows, key=lambda b: (-b.created_at.timestamp(), b.media_buy_id))
        found = {b.media_buy_id for b in matched}  # ids on other pages are not missing
        unmatched = [i for i in media_buy_ids if i not in found]
        if filters and unmatched:
            # Filtered out is not missing: a buy of the caller's that a status (or
            # account) filter leaves out is just not in this answer. Reported as
            # MEDIA_BUY_NOT_FOUND, it told the buyer the buy did not exist.
            found |= {b.media_buy_id for b in await db.read(*_BUYS_BY_ID.bind(unmatched, **owner))}
        total = len(matched)
        buys = matched[offset : offset + limit] if limit is not None else matched
    else:
        stmt = select(_BUYS).where(*where).order_by(_BUYS.c.created_at.desc(), _BUYS.c.media_buy_id)
        if limit is not None:
            stmt = stmt.offset(offset).limit(limit)
        async with db.engine.connect() as conn:
            buys = list((await conn.execute(stmt, owner)).all())
            found, total = set(), len(buys)
            if limit is not None and (offset or len(buys) == limit):
                count = select(func.count()).select_from(MediaBuy).where(*where)
                total = (await conn.execute(count, owner)).scalar_one()
    ids = [b.media_buy_id for b in buys]
    packages: dict[str, list[Package]] = {i: [] for i in ids}
    for part in chunked(ids):
        for p in await db.read(*_PACKAGES_OF.bind(part)):
            packages[p.media_buy_id].append(p)
    missing = [i for i in media_buy_ids if i not in found]
    return [BuyView(b, packages[b.media_buy_id]) for b in buys], missing, total  # type: ignore[arg-type]
