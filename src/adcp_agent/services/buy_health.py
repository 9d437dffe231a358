"""A media buy's health (AdCP ``health`` and ``impairments[]`` on get_media_buys): a
package whose creatives have all gone offline — rejected by the publisher's review or
suspended — cannot serve, and the buy is ``impaired`` until one of them is approved
again or another approved creative is assigned.

Computed when read, from the creatives' current state, so it is never stale. Only
material impairments are reported: a rejected creative in a package that still has an
approved one does not stop it serving, and is left out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import col, select

from adcp_agent.db.engine import Database
from adcp_agent.db.id_lists import ByIds
from adcp_agent.db.models_creatives import Creative, CreativeAssignment
from adcp_agent.db.models_media import Package
from adcp_agent.db.types import chunked
from adcp_agent.services.outbox import iso

OFFLINE = ("rejected", "suspended")
REMEDIATION = (
    "Send new assets for the creative with sync_creatives (they go back to review), or "
    "assign another approved creative to the package with update_media_buy."
)

# Each package's creatives: the assignment (pushed: the ad server held it, which only
# an approved creative's is) and the creative's state now.
_CREATIVES_OF = ByIds(
    lambda in_ids: (
        select(
            col(CreativeAssignment.package_id),
            col(CreativeAssignment.pushed),
            col(Creative.id),
            col(Creative.creative_id),
            col(Creative.status),
            col(Creative.rejection_reason),
            col(Creative.updated_at),
        )
        .join(Creative, col(Creative.id) == col(CreativeAssignment.creative_pk))
        .where(in_ids(col(CreativeAssignment.package_id)))
    )
)


def _impairment(creative: Any, package_ids: list[str], was_approved: bool) -> dict[str, Any]:
    rejected = creative.status == "rejected"
    out: dict[str, Any] = {
        # Stable while the creative stays offline; a later transition is a new one.
        "impairment_id": f"imp_{creative.id}_{int(creative.updated_at.timestamp())}",
        "resource_type": "creative",
        "resource_id": creative.creative_id,
        "package_ids": package_ids,
        "transition": {"to": creative.status},
        "reason_code": ("content_rejected" if was_approved else "policy_violation")
        if rejected
        else "seller_removed",
        "observed_at": iso(creative.updated_at),
        "remediation": REMEDIATION,
    }
    if was_approved:
        out["transition"]["from"] = "approved"
    if creative.rejection_reason:
        out["reason"] = creative.rejection_reason[:500]
    return out


async def impairments(db: Database, packages: Sequence[Package]) -> dict[str, list[dict[str, Any]]]:
    """The open impairments of the buys these packages belong to, by media buy id
    (buys without any are absent). Canceled packages are left out: they serve nothing."""
    running = {p.package_id: p.media_buy_id for p in packages if p.canceled_at is None}
    rows: list[Any] = []
    for part in chunked(list(running)):
        rows += await db.read(*_CREATIVES_OF.bind(part))
    serving = {r.package_id for r in rows if r.status == "approved"}
    by_creative: dict[int, tuple[Any, list[str], bool]] = {}
    for r in sorted(rows, key=lambda r: (r.id, r.package_id)):
        if r.status not in OFFLINE or r.package_id in serving:
            continue
        creative, package_ids, pushed = by_creative.get(r.id, (r, [], False))
        by_creative[r.id] = (creative, [*package_ids, r.package_id], pushed or r.pushed)
    out: dict[str, list[dict[str, Any]]] = {}
    for creative, package_ids, was_approved in by_creative.values():
        for media_buy_id in sorted({running[p] for p in package_ids}):
            mine = [p for p in package_ids if running[p] == media_buy_id]
            out.setdefault(media_buy_id, []).append(_impairment(creative, mine, was_approved))
    return out
