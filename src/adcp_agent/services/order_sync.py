"""Reconciling our media buys with the ad server's orders (``sync-orders``).

Publishers also act in their ad server's own UI: an order paused or canceled there must
not keep reading as live here. Each booked buy's order status is read back, mapped to our
state, and where the ad server clearly says paused / running / canceled while we say
otherwise, our record follows it (audited). Everything else is reported, not guessed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from adcp_agent.db.models import Tenant
from adcp_agent.db.models_media import MediaBuy
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import audit, buy_state
from adcp_agent.state import AppState

# Only states the ad server can contradict; approval and rejection stay ours.
RECONCILABLE = ("live", "paused")
_WORDS = (
    ("cancel", "canceled"),
    ("delet", "canceled"),
    ("archiv", "archived"),
    ("pause", "paused"),
    ("inactive", "paused"),
    ("deliver", "live"),
    ("active", "live"),
    ("ready", "live"),
    ("running", "live"),
)


def our_state(ad_server_status: str) -> str | None:
    """The ad server's status word as our state, when it maps unambiguously."""
    word = ad_server_status.lower()
    for fragment, state in _WORDS:
        if fragment in word:
            return state
    return None


@dataclass
class SyncReport:
    orders_checked: int = 0
    in_sync: int = 0
    updated: list[dict[str, Any]] = field(default_factory=list)
    unmapped: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


async def sync_orders(state: AppState, tenant_id: str, *, actor: str = "admin") -> SyncReport:
    async with state.db.reading() as session:
        tenant = await session.get(Tenant, tenant_id)
        if tenant is None or tenant.deleted_at is not None:
            raise AdcpError("NOT_FOUND", f"Tenant '{tenant_id}' was not found.", field="tenant_id")
        buys = list(
            (
                await session.exec(
                    select(MediaBuy).where(
                        MediaBuy.tenant_id == tenant_id,
                        col(MediaBuy.state).in_(RECONCILABLE),
                        col(MediaBuy.external_order_id).is_not(None),
                    )
                )
            ).all()
        )
    by_server: dict[str, list[MediaBuy]] = defaultdict(list)
    for buy in buys:
        by_server[buy.ad_server].append(buy)
    report = SyncReport()
    for server, group in by_server.items():
        adapter = state.adapters.get(tenant, server)
        states = await adapter.sync_orders([b.external_order_id or "" for b in group])
        seen = {s.external_order_id: s for s in states}
        for buy in group:
            report.orders_checked += 1
            external = seen.get(buy.external_order_id or "")
            if external is None:
                report.missing.append(buy.media_buy_id)
                continue
            theirs = our_state(external.status)
            if theirs is None:
                report.unmapped.append(
                    {"media_buy_id": buy.media_buy_id, "ad_server_status": external.status}
                )
            elif theirs == buy.state or (theirs == "archived" and buy.archived):
                report.in_sync += 1
            else:
                await _follow(state, buy, theirs, external.status, actor)
                report.updated.append(
                    {
                        "media_buy_id": buy.media_buy_id,
                        "was": buy.state,
                        "now": theirs,
                        "ad_server_status": external.status,
                    }
                )
    return report


async def _follow(state: AppState, buy: MediaBuy, theirs: str, word: str, actor: str) -> None:
    async with state.db.transaction() as session:
        stored = await session.get(MediaBuy, buy.media_buy_id)
        assert stored is not None
        before = {"state": stored.state, "archived": stored.archived}
        if theirs == "archived":
            stored.archived = True
        else:
            stored.state = theirs
        stored.updated_at = utcnow()
        await buy_state.bump_revision(session, stored)
        await audit.record(
            session,
            None,
            "media_buy.sync",
            actor=actor,
            tenant_id=stored.tenant_id,
            target_type="media_buy",
            target_id=stored.media_buy_id,
            before=before,
            after={"state": stored.state, "archived": stored.archived},
            details={"ad_server": stored.ad_server, "ad_server_status": word},
            revision=stored.revision,
        )
