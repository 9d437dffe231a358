"""Which packages can serve: a package delivers only with at least one approved creative
that the ad server holds (assignment pushed). Shared by delivery and reporting."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.models_creatives import Creative, CreativeAssignment


async def deliverable_package_ids(session: AsyncSession, package_ids: Sequence[str]) -> set[str]:
    if not package_ids:
        return set()
    rows = await session.exec(
        select(CreativeAssignment.package_id)
        .join(Creative, Creative.id == CreativeAssignment.creative_pk)
        .where(
            CreativeAssignment.package_id.in_(list(package_ids)),  # type: ignore[attr-defined]
            CreativeAssignment.pushed == True,  # noqa: E712
            Creative.status == "approved",
        )
    )
    return set(rows.all())
