"""sync_creatives ``delete_missing``: the creatives a full-library sync leaves out are
archived — except those still serving in a running buy, which the ad server holds and
this agent cannot take back from it (the same rule as unassigning a serving creative):
they are kept, and the sync says so."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.models_creatives import Creative, CreativeAssignment
from adcp_agent.db.models_media import MediaBuy, Package
from adcp_agent.db.types import utcnow
from adcp_agent.services import audit
from adcp_agent.services.identity import Caller

ARCHIVED = "archived"


async def missing(
    session: AsyncSession, caller: Caller, account_id: str, keep: Collection[str], now: datetime
) -> list[tuple[Creative, list[str]]]:
    """The caller's creatives of ``account_id`` a sync of ``keep`` leaves out (archived
    ones aside), each with the running packages it serves in (empty: it may go)."""
    stmt = select(Creative).where(
        Creative.tenant_id == caller.tenant_id,
        Creative.principal_id == caller.principal_id,
        Creative.account_id == account_id,
        Creative.status != ARCHIVED,
        col(Creative.creative_id).notin_(list(keep)),
    )
    left = list((await session.exec(stmt.order_by(col(Creative.creative_id)))).all())
    if not left:
        return []
    serving = await session.exec(
        select(CreativeAssignment.creative_pk, CreativeAssignment.package_id)
        .join(Package, col(Package.package_id) == col(CreativeAssignment.package_id))
        .join(MediaBuy, col(MediaBuy.media_buy_id) == col(Package.media_buy_id))
        .where(
            col(CreativeAssignment.creative_pk).in_([c.id for c in left]),
            CreativeAssignment.pushed == True,  # noqa: E712
            col(Package.canceled_at).is_(None),
            col(MediaBuy.state).in_(("live", "paused")),
            MediaBuy.end_time > now,
        )
    )
    packages: dict[int, list[str]] = {}
    for creative_pk, package_id in serving.all():
        packages.setdefault(creative_pk, []).append(package_id)
    return [(c, sorted(packages.get(c.id or 0, []))) for c in left]


async def archive(
    session: AsyncSession,
    caller: Caller,
    creative: Creative,
    serving: list[str],
    *,
    dry_run: bool,
) -> list[str]:
    """Archive a creative a ``delete_missing`` sync left out; or, while it still serves
    (``serving``: its running packages), keep it: the warnings saying why (none: it
    was archived)."""
    if serving:
        return [
            f"Not archived: still serving in {', '.join(serving)}. Pause those packages or "
            "let their buys end, then sync again."
        ]
    if not dry_run:
        creative.status, creative.updated_at = ARCHIVED, utcnow()
        session.add(creative)
        await audit.record(
            session,
            caller,
            "creative.archived",
            target_type="creative",
            target_id=creative.creative_id,
            after={"status": ARCHIVED, "by": "sync_creatives delete_missing"},
        )
    return []
