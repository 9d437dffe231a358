"""Audiences in targeting overlays: ``audience_include`` (only matched members are
eligible, so the audience must be ready) and ``audience_exclude``, ids of the buy's
account's live audiences; passed to the ad servers as key-values (``adcp_aud``,
``adcp_aud_exclude``: the audiences' seller ids); delivery reaches the matched share
of the publisher's users (``coverage``; the rest, for an exclusion)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.engine import Database
from adcp_agent.db.models import Tenant
from adcp_agent.db.models_audiences import Audience
from adcp_agent.errors import AdcpError
from adcp_agent.services.audiences import (
    EXCLUDE,
    INCLUDE,
    in_overlay,
    minimum_size,
    status_of,
)
from adcp_agent.services.targeting import AUDIENCE_COVERAGE


async def check_targeting(
    db: Database,
    tenant_id: str,
    account_id: str,
    overlays: Sequence[tuple[dict[str, Any] | None, str]],
) -> None:
    """Every audience the overlays name is a live audience of the account, and every
    included one is ready; ``overlays`` are (overlay, field) pairs."""
    named = {a for overlay, _ in overlays for ids in in_overlay(overlay) for a in ids}
    if not named:
        return
    async with db.reading() as session:
        tenant = await session.get(Tenant, tenant_id)
        rows = (
            await session.exec(
                select(Audience).where(
                    Audience.tenant_id == tenant_id,
                    Audience.account_id == account_id,
                    col(Audience.audience_id).in_(sorted(named)),
                    col(Audience.deleted_at).is_(None),
                )
            )
        ).all()
    known = {a.audience_id: a for a in rows}
    minimum = minimum_size(tenant.features if tenant else None)
    for overlay, where in overlays:
        include, exclude = in_overlay(overlay)
        for name, ids in ((INCLUDE, include), (EXCLUDE, exclude)):
            for j, audience_id in enumerate(ids):
                at = f"{where}.{name}[{j}]"
                audience = known.get(audience_id)
                if audience is None:
                    raise AdcpError(
                        "REFERENCE_NOT_FOUND",
                        f"Audience '{audience_id}' is not on the media buy's account.",
                        field=at,
                        suggestion="Upload it with sync_audiences on that account.",
                    )
                if name == INCLUDE and status_of(audience, minimum) != "ready":
                    raise AdcpError(
                        "AUDIENCE_TOO_SMALL",
                        f"Audience '{audience_id}' has {audience.matched_count} matched members; "
                        f"targeting needs {minimum}.",
                        field=at,
                        details={"matched_count": audience.matched_count, "minimum_size": minimum},
                    )


async def coverage(session: AsyncSession, tenant_id: str, account_id: str) -> dict[str, float]:
    """Each live audience of the account as ``targeting.reach_factor``'s coverage takes
    it: the share of the publisher's users it reaches, in percent, under
    ``targeting.AUDIENCE_COVERAGE``."""
    rows = await session.exec(
        select(Audience.audience_id, Audience.reach_share).where(
            Audience.tenant_id == tenant_id,
            Audience.account_id == account_id,
            col(Audience.deleted_at).is_(None),
        )
    )
    return {AUDIENCE_COVERAGE + audience_id: 100 * share for audience_id, share in rows.all()}
