"""The media-buy state machine.

Stored ``state``: provisioning (being booked; invisible) → pending_approval (guaranteed,
awaiting the publisher's IO sign-off) → live ⇄ paused; terminal: rejected, canceled.
The AdCP status buyers see is derived from the state and the flight dates:
live → pending_start / active / completed; paused → paused (completed after end).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, not_, or_
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.models_media import MediaBuy, Package
from adcp_agent.errors import AdcpError

TERMINAL = {"rejected", "canceled"}

# action -> the stored states it is allowed from
ALLOWED: dict[str, set[str]] = {
    "pause": {"live"},
    "resume": {"paused"},
    "cancel": {"pending_approval", "live", "paused"},
    "approve": {"pending_approval"},
    "reject": {"pending_approval"},
    "submit_for_approval": {"rejected"},
    "activate": {"live", "paused"},
    "update": {"pending_approval", "live", "paused"},
    "archive": {"live", "paused", "canceled", "rejected"},
}


def wire_status(buy: MediaBuy, now: datetime) -> str:
    if buy.state == "canceled":
        return "canceled"
    if buy.state == "rejected":
        return "rejected"
    if buy.state in ("live", "paused") and now >= buy.end_time:
        return "completed"
    if buy.state == "paused":
        return "paused"
    if buy.state == "live":
        return "active" if now >= buy.start_time else "pending_start"
    return "pending_start"  # pending_approval / provisioning: not yet confirmed


def status_clause(statuses: Sequence[str], now: datetime) -> ColumnElement[bool]:
    """SQL for ``wire_status(buy, now) in statuses``: lets listings filter and page in
    the database instead of loading every buy."""
    state, start, end = col(MediaBuy.state), col(MediaBuy.start_time), col(MediaBuy.end_time)
    running = state.in_(("live", "paused"))
    when = {
        "canceled": state == "canceled",
        "rejected": state == "rejected",
        "completed": and_(running, end <= now),
        "paused": and_(state == "paused", end > now),
        "active": and_(state == "live", end > now, start <= now),
        "pending_start": or_(
            and_(state == "live", end > now, start > now),
            not_(state.in_(("canceled", "rejected", "live", "paused"))),
        ),
    }
    parts = [when[s] for s in dict.fromkeys(statuses) if s in when]
    return or_(*parts) if parts else false()


def is_completed(buy: MediaBuy, now: datetime) -> bool:
    return wire_status(buy, now) == "completed"


def allowed_actions(buy: MediaBuy, now: datetime) -> list[str]:
    if buy.archived:
        return []
    out = [a for a, states in ALLOWED.items() if buy.state in states]
    if is_completed(buy, now):
        out = [a for a in out if a == "archive"]
    elif "archive" in out and buy.state == "live":
        out.remove("archive")  # a running buy is paused or finished before it is archived
    return out


def require(buy: MediaBuy, action: str, now: datetime, field: str | None = None) -> None:
    """Raise INVALID_STATE unless ``action`` is legal now, naming what is."""
    if action in allowed_actions(buy, now):
        return
    status = "archived" if buy.archived else wire_status(buy, now)
    if buy.state == "pending_approval":
        status = "pending_approval"
    allowed = allowed_actions(buy, now)
    raise AdcpError(
        "INVALID_STATE",
        f"Cannot {action.replace('_', ' ')} media buy '{buy.media_buy_id}' while it is "
        f"{status}. Allowed now: {', '.join(allowed) if allowed else 'none'}.",
        field=field,
        details={"status": status, "allowed_actions": allowed},
    )


# AdCP valid_actions vocabulary (enums/media-buy-valid-action.json) for a buy.
def adcp_valid_actions(buy: MediaBuy, now: datetime) -> list[str]:
    allowed = allowed_actions(buy, now)
    out: list[str] = []
    if "pause" in allowed:
        out.append("pause")
    if "resume" in allowed:
        out.append("resume")
    if "cancel" in allowed:
        out.append("cancel")
    if "update" in allowed and buy.state != "pending_approval":
        out += [
            "increase_budget",
            "decrease_budget",
            "reallocate_budget",
            "update_targeting",
            "update_frequency_caps",
            "update_pacing",
            "extend_flight",
            "shorten_flight",
            "update_creative_assignments",
        ]
        if now < buy.start_time:
            out.append("update_flight_dates")
    if "update" in allowed:
        out.append("add_packages")  # guaranteed ones only while awaiting approval
    return out


def actions(
    buy: MediaBuy, now: datetime, packages: Sequence[Package] | None = None
) -> dict[str, Any]:
    """A buy's ``valid_actions`` and AdCP's structured ``available_actions`` (every
    action here is self-serve), for a wire object. With the buy's ``packages``:
    ``remove_packages`` where a package can be canceled on its own (one of two or more
    running)."""
    valid = adcp_valid_actions(buy, now)
    running = packages is not None and sum(p.canceled_at is None for p in packages) > 1
    if running and "increase_budget" in valid:  # the package-level changes are open
        valid.append("remove_packages")
    return {
        "valid_actions": valid,
        "available_actions": [{"action": a, "mode": "self_serve"} for a in valid],
    }


async def bump_revision(session: AsyncSession, buy: MediaBuy) -> None:
    """Give ``buy`` (a session's row, its other changes pending) a new revision counted
    by the database — ``revision = revision + 1`` in its UPDATE — so that changes made
    at once each get their own: an ORM transaction's reads run before it takes the
    write lock on SQLite, and read what is committed on PostgreSQL, so a revision read
    and written back from Python lost the bumps made in between."""
    buy.revision = MediaBuy.revision + 1  # type: ignore[assignment]
    session.add(buy)
    await session.flush()
    await session.refresh(buy, attribute_names=["revision"])
