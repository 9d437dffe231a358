"""list_creatives: the caller's creative library, filtered and paged in the database.

A page costs what the page holds, not what the library holds: the filters on columns
and on assignments are SQL (the assignment ones as EXISTS subqueries), the page is cut
with LIMIT/OFFSET on the listing index (newest change first), and only the page's
assignments are read. ``name_contains`` and ``tags_any`` keep Python's matching (a
case-insensitive substring for any script, which SQLite's ``lower()`` is not; tags in a
JSON list): with either, the candidates are read as (id, name, tags) — no assets, no
objects — matched here, and only the page's rows are loaded in full."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, literal_column
from sqlmodel import col, select

from adcp_agent.db.models_creatives import Creative, CreativeAssignment
from adcp_agent.db.models_media import Package
from adcp_agent.services import accounts
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState


@dataclass(frozen=True)
class Listing:
    """One page of the library: each creative with its assignments, and how many
    creatives match the filters in all."""

    rows: list[tuple[Creative, list[CreativeAssignment]]]
    total: int


async def list_creatives(
    state: AppState,
    caller: Caller,
    *,
    statuses: Sequence[str] = (),
    creative_ids: Sequence[str] = (),
    media_buy_ids: Sequence[str] = (),
    package_ids: Sequence[str] = (),
    unassigned: bool | None = None,
    name_contains: str | None = None,
    tags_any: Sequence[str] = (),
    format_ids: Sequence[str] = (),
    account_ref: dict[str, Any] | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> Listing:
    """The caller's creatives matching every filter given, most recently changed first
    (then by creative_id); ``limit`` of them from ``offset`` (all without a limit)."""
    caller.require_principal()
    where: list[Any] = [
        Creative.tenant_id == caller.tenant_id,
        Creative.principal_id == caller.principal_id,
    ]
    if account_ref is not None:
        account = await accounts.resolve(state.db, caller, account_ref)
        where.append(Creative.account_id == account.account_id)
    if statuses:
        where.append(col(Creative.status).in_(list(statuses)))
    if creative_ids:
        where.append(col(Creative.creative_id).in_(list(creative_ids)))
    if format_ids:
        where.append(col(Creative.format_id).in_(list(format_ids)))
    if unassigned is not None:
        assigned = exists().where(CreativeAssignment.creative_pk == Creative.id)
        where.append(~assigned if unassigned else assigned)
    # Assigned to given packages or buys: the assignments name the creatives (an IN
    # subquery the database starts from), rather than a probe for every creative.
    if package_ids:
        linked = select(CreativeAssignment.creative_pk).where(
            col(CreativeAssignment.package_id).in_(list(package_ids))
        )
        where.append(col(Creative.id).in_(linked))
    if media_buy_ids:
        linked = (
            select(CreativeAssignment.creative_pk)
            .join(Package, col(Package.package_id) == CreativeAssignment.package_id)
            .where(col(Package.media_buy_id).in_(list(media_buy_ids)))
        )
        where.append(col(Creative.id).in_(linked))
    order = (col(Creative.updated_at).desc(), col(Creative.creative_id))
    end = None if limit is None else offset + limit
    async with state.db.reading() as session:
        if name_contains or tags_any:
            needle = (name_contains or "").lower()
            wanted = set(tags_any)
            tags = Creative.tags if wanted else literal_column("NULL")  # decoded only if asked
            candidates = await session.exec(
                select(Creative.id, Creative.name, tags).where(*where).order_by(*order)
            )
            ids = [
                pk
                for pk, name, their_tags in candidates.all()
                if needle in name.lower() and (not wanted or wanted.intersection(their_tags))
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
