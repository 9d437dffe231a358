"""list_creatives: the caller's creative library, filtered, sorted and paged in the
database.

A page costs what the page holds, not what the library holds: the filters on columns
and on assignments are SQL (assignments to packages or buys as IN subqueries), the page
is cut with LIMIT/OFFSET in the order asked (created or updated time on the listing
indexes; name, status or assignment count), and only the page's assignments are read.
``name_contains`` and the tag filters keep Python's matching (a case-insensitive
substring in any script, which SQLite's ``lower()`` is not; tags in a JSON list): with
one of them the candidates are read as (id, name, tags) — no assets, no objects —
matched here, and only the page's rows are loaded in full."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, literal_column
from sqlmodel import col, select

from adcp_agent.db.models_creatives import Creative, CreativeAssignment
from adcp_agent.db.models_media import Package
from adcp_agent.services import accounts, paging
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState

_ASSIGNMENTS = (
    select(func.count())
    .where(CreativeAssignment.creative_pk == Creative.id)
    .correlate(Creative)
    .scalar_subquery()
)
# list_creatives' sort fields (AdCP 3.1) and the columns they order by.
SORTS: dict[str, Any] = {
    "created_date": col(Creative.created_at),
    "updated_date": col(Creative.updated_at),
    "name": col(Creative.name),
    "status": col(Creative.status),
    "assignment_count": _ASSIGNMENTS,
}


@dataclass(frozen=True)
class CreativeQuery:
    """list_creatives' filters (each one given must match) and order."""

    statuses: Sequence[str] = ()
    creative_ids: Sequence[str] = ()
    media_buy_ids: Sequence[str] = ()
    package_ids: Sequence[str] = ()
    unassigned: bool | None = None
    name_contains: str | None = None
    tags: Sequence[str] = ()  # all of them
    tags_any: Sequence[str] = ()
    format_ids: Sequence[str] = ()
    account_refs: Sequence[dict[str, Any]] = ()  # any of them
    account_ref: dict[str, Any] | None = None  # the request's account: this one
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    sort: str = "created_date"  # a key of SORTS
    descending: bool = True


@dataclass(frozen=True)
class Listing:
    """One page of the library: each creative with its assignments, and how many
    creatives match the filters in all."""

    rows: list[tuple[Creative, list[CreativeAssignment]]]
    total: int


async def list_creatives(
    state: AppState,
    caller: Caller,
    query: CreativeQuery = CreativeQuery(),
    *,
    offset: int = 0,
    limit: int | None = None,
) -> Listing:
    """The caller's creatives matching ``query``, in its order (then by creative_id);
    ``limit`` of them from ``offset`` (all without a limit)."""
    caller.require_principal()
    where = await _filters(state, caller, query)
    key = SORTS[query.sort]
    order = (key.desc() if query.descending else key.asc(), col(Creative.creative_id))
    name_contains, tags_any, tags = query.name_contains, query.tags_any, query.tags
    end = None if limit is None else offset + limit
    async with state.db.reading() as session:
        if name_contains or tags_any or tags:
            needle = (name_contains or "").lower()
            any_of, all_of = set(tags_any), set(tags)
            # the tags column is decoded only if a tag filter asks for it
            tag_column = Creative.tags if any_of or all_of else literal_column("NULL")
            candidates = await session.exec(
                select(Creative.id, Creative.name, tag_column).where(*where).order_by(*order)
            )
            ids = [
                pk
                for pk, name, their_tags in candidates.all()
                if needle in name.lower()
                and (not any_of or any_of.intersection(their_tags))
                and all_of.issubset(their_tags or ())
            ]
            total, page_ids = len(ids), ids[offset:end]
            loaded = {
                c.id: c
                for c in (
                    await session.exec(select(Creative).where(col(Creative.id).in_(page_ids)))
                ).all()
            }
            creatives = [loaded[pk] for pk in page_ids]
        else:
            stmt = select(Creative).where(*where).order_by(*order).offset(offset)
            if limit is not None:
                stmt = stmt.limit(limit)
            creatives = list((await session.exec(stmt)).all())
            if limit is None or (len(creatives) < limit and (creatives or not offset)):
                total = offset + len(creatives)  # this page is the last one
            else:
                counted = select(func.count()).select_from(Creative).where(*where)
                total = (await session.exec(counted)).one()
        links: dict[int, list[CreativeAssignment]] = {}
        if creatives:
            for link in (
                await session.exec(
                    select(CreativeAssignment)
                    .where(col(CreativeAssignment.creative_pk).in_([c.id for c in creatives]))
                    .order_by(col(CreativeAssignment.assigned_at), col(CreativeAssignment.id))
                )
            ).all():
                links.setdefault(link.creative_pk, []).append(link)
    return Listing([(c, links.get(c.id or 0, [])) for c in creatives], total)


async def _filters(state: AppState, caller: Caller, query: CreativeQuery) -> list[Any]:
    where: list[Any] = [
        Creative.tenant_id == caller.tenant_id,
        Creative.principal_id == caller.principal_id,
    ]
    if query.account_refs:
        ids = [(await accounts.resolve(state.db, caller, r)).account_id for r in query.account_refs]
        where.append(col(Creative.account_id).in_(ids))
    if query.account_ref is not None:
        account = await accounts.resolve(state.db, caller, query.account_ref)
        where.append(Creative.account_id == account.account_id)
    where += paging.conditions(
        [
            (col(Creative.status), query.statuses),
            (col(Creative.creative_id), query.creative_ids),
            (col(Creative.format_id), query.format_ids),
        ],
        [
            (col(Creative.created_at), query.created_after, query.created_before),
            (col(Creative.updated_at), query.updated_after, query.updated_before),
        ],
    )
    if query.unassigned is not None:
        assigned = exists().where(CreativeAssignment.creative_pk == Creative.id)
        where.append(~assigned if query.unassigned else assigned)
    # Assigned to given packages or buys: the assignments name the creatives (an IN
    # subquery the database starts from), rather than a probe for every creative.
    if query.package_ids:
        linked = select(CreativeAssignment.creative_pk).where(
            col(CreativeAssignment.package_id).in_(list(query.package_ids))
        )
        where.append(col(Creative.id).in_(linked))
    if query.media_buy_ids:
        linked = (
            select(CreativeAssignment.creative_pk)
            .join(Package, col(Package.package_id) == CreativeAssignment.package_id)
            .where(col(Package.media_buy_id).in_(list(query.media_buy_ids)))
        )
        where.append(col(Creative.id).in_(linked))
    return where
