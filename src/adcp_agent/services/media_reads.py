"""Reading media buys back, scoped to the caller (and optionally one account)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import select

from adcp_agent.db.models_media import MediaBuy, Package
from adcp_agent.services import accounts, buy_state
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState


@dataclass
class BuyView:
    buy: MediaBuy
    packages: list[Package]


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
    caller.require_principal()
    now = now or state.clock.now()
    account_id = None
    if account_ref is not None:
        account_id = (await accounts.resolve(state.db, caller, account_ref)).account_id
    async with state.db.session() as session:
        stmt = select(MediaBuy).where(
            MediaBuy.tenant_id == caller.tenant_id,
            MediaBuy.principal_id == caller.principal_id,
            MediaBuy.state != "provisioning",
        )
        if account_id:
            stmt = stmt.where(MediaBuy.account_id == account_id)
        elif not media_buy_ids:
            stmt = stmt.where(MediaBuy.sandbox == False)  # noqa: E712
        if media_buy_ids:
            stmt = stmt.where(MediaBuy.media_buy_id.in_(list(media_buy_ids)))  # type: ignore[attr-defined]
        else:
            stmt = stmt.where(MediaBuy.state != "pending_approval")
        buys = list(
            (
                await session.exec(stmt.order_by(MediaBuy.created_at.desc(), MediaBuy.media_buy_id))
            ).all()  # type: ignore[attr-defined]
        )
        if statuses:
            buys = [b for b in buys if buy_state.wire_status(b, now) in statuses]
        ids = [b.media_buy_id for b in buys]
        packages: dict[str, list[Package]] = {i: [] for i in ids}
        if ids:
            for p in (
                await session.exec(
                    select(Package)
                    .where(Package.media_buy_id.in_(ids))  # type: ignore[attr-defined]
                    .order_by(Package.created_at, Package.package_id)
                )
            ).all():
                packages[p.media_buy_id].append(p)
    found = set(ids)
    missing = [i for i in media_buy_ids if i not in found]
    return [BuyView(b, packages[b.media_buy_id]) for b in buys], missing
