"""A media buy's revision history (AdCP 3.1 get_media_buys ``include_history``).

Every change that bumps a buy's revision writes an audit row in the same transaction,
and the row keeps the revision it produced (migration 0027): the history is those rows,
newest first, each told as AdCP's {revision, timestamp, actor, action, summary,
package_id}. Entries are append-only because audit rows are. The action is AdCP's
standard vocabulary where one fits (created, activated, paused, resumed, canceled,
rejected, completed, updated_budget, updated_dates, updated_packages, package_canceled,
package_paused, package_resumed); the summary says what changed, from the rows'
before/after views.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, select

from adcp_agent.db.engine import Database
from adcp_agent.db.id_lists import ByIds
from adcp_agent.db.models import AuditLog

MAX_ENTRIES = 1000  # AdCP's maximum for include_history

_AUDIT = AuditLog.__table__  # type: ignore[attr-defined]


def _latest(in_ids: Any) -> Any:
    ranked = (
        select(
            _AUDIT.c.target_id,
            _AUDIT.c.revision,
            _AUDIT.c.created_at,
            _AUDIT.c.actor,
            _AUDIT.c.action,
            _AUDIT.c.before,
            _AUDIT.c.after,
            _AUDIT.c.details,
            func.row_number()
            .over(partition_by=_AUDIT.c.target_id, order_by=_AUDIT.c.revision.desc())
            .label("newest"),
        )
        .where(
            in_ids(_AUDIT.c.target_id),
            _AUDIT.c.tenant_id == bindparam("tenant"),
            _AUDIT.c.target_type == "media_buy",
            _AUDIT.c.revision.is_not(None),
        )
        .subquery()
    )
    return (
        select(ranked)
        .where(ranked.c.newest <= bindparam("entries"))
        .order_by(ranked.c.target_id, ranked.c.revision.desc())
    )


_LATEST = ByIds(_latest)


async def recent(
    db: Database, tenant_id: str, buys: Sequence[tuple[str, str]], entries: int
) -> dict[str, list[dict[str, Any]]]:
    """The last ``entries`` history entries of each of ``buys`` ((media_buy_id,
    currency) pairs of the tenant's), newest first."""
    out: dict[str, list[dict[str, Any]]] = {media_buy_id: [] for media_buy_id, _ in buys}
    if not buys or entries <= 0:
        return out
    currency = dict(buys)
    stmt, params = _LATEST.bind(list(currency), tenant=tenant_id, entries=entries)
    for row in await db.read(stmt, params):
        out[row.target_id].append(entry(row, currency[row.target_id]))
    return out


def entry(row: Any, currency: str) -> dict[str, Any]:
    """One audit row (with AuditLog's columns) as an AdCP history entry."""
    action, summary, package_id = _told(
        row.action, row.before or {}, row.after or {}, row.details or {}, currency
    )
    out: dict[str, Any] = {
        "revision": row.revision,
        "timestamp": _iso(row.created_at),
        "actor": row.actor,
        "action": action,
        "summary": summary[:500],
    }
    if package_id:
        out["package_id"] = package_id
    return out


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_STATE_ACTION = {
    "live": "activated",
    "paused": "paused",
    "canceled": "canceled",
    "completed": "completed",
    "rejected": "rejected",
    "pending_approval": "submitted_for_approval",
}


def _money(amount: Any, currency: str) -> str:
    return f"{float(amount):,.2f} {currency}" if amount is not None else "none"


def _day(value: Any) -> str:
    return str(value)[:16].replace("T", " ") if value else "none"


def _told(
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    details: dict[str, Any],
    currency: str,
) -> tuple[str, str, str | None]:
    """(AdCP action, summary, the package it concerned if only one)."""
    if action == "media_buy.create":
        packages = after.get("packages") or {}
        summary = (
            f"Booked {len(packages)} package(s), {_money(after.get('total_budget'), currency)}, "
            f"{_day(after.get('start_time'))} to {_day(after.get('end_time'))}"
        )
        if after.get("state") == "pending_approval":
            summary += "; awaiting the publisher's approval"
        elif after.get("state") == "paused":
            summary += "; paused at the buyer's request"
        return "created", summary + ".", None
    if action == "media_buy.approve":
        return "activated", "Approved by the publisher.", None
    if action == "media_buy.reject":
        reason = details.get("reason") or "no reason given"
        return "rejected", f"Declined by the publisher: {reason}.", None
    if action == "media_buy.sync":
        state = "archived" if after.get("archived") else after.get("state", "")
        word = details.get("ad_server_status") or state
        told = _state_change(before.get("state"), state) or "updated"
        return told, f"The ad server reported the order {word}.", None
    return summarise_change(before, after, details, currency)


_STATE_TOLD = {
    "activated": "Media buy activated",
    "paused": "Media buy paused",
    "resumed": "Media buy resumed",
    "canceled": "Media buy canceled",
    "completed": "Media buy completed",
    "rejected": "Media buy rejected",
    "submitted_for_approval": "Sent for the publisher's approval",
}


def _state_change(was: str | None, now: str | None) -> str | None:
    if not now or was == now:
        return None
    if now == "live" and was == "paused":
        return "resumed"
    return _STATE_ACTION.get(now, now)


def summarise_change(
    before: dict[str, Any], after: dict[str, Any], details: dict[str, Any], currency: str
) -> tuple[str, str, str | None]:
    """An update (or a sandbox flight move) told from what its before/after views
    differ in; the action is the most telling change."""
    changes: list[str] = []
    actions: list[str] = []
    packages: set[str] = set()
    state = _state_change(before.get("state"), after.get("state"))
    if state:
        actions.append(state)
        changes.append(_STATE_TOLD.get(state, f"Media buy {state}"))
    old_packages: dict[str, Any] = before.get("packages") or {}
    added = [p for p in after.get("packages") or {} if old_packages and p not in old_packages]
    if before.get("total_budget") != after.get("total_budget") and "total_budget" in after:
        if not added:  # else the packages added are what changed it
            actions.append("updated_budget")
        changes.append(
            f"Total budget from {_money(before.get('total_budget'), currency)} to "
            f"{_money(after.get('total_budget'), currency)}"
        )
    for edge in ("start_time", "end_time"):
        if before.get(edge) != after.get(edge) and edge in after:
            actions.append("updated_dates")
            changes.append(
                f"{edge.replace('_', ' ').capitalize()} from {_day(before.get(edge))} to "
                f"{_day(after.get(edge))}"
            )
    for package_id, new in (after.get("packages") or {}).items():
        if package_id in added:
            actions.append("updated_packages")
            what = f" ({new['product_id']})" if new.get("product_id") else ""
            changes.append(
                f"Package {package_id}{what} added with a budget of "
                f"{_money(new.get('budget'), currency)}"
            )
            packages.add(package_id)
            continue
        old = old_packages.get(package_id) or {}
        if new.get("canceled") and not old.get("canceled"):
            actions.append("package_canceled")
            changes.append(f"Package {package_id} canceled")
            packages.add(package_id)
            continue  # its pause and released goal are the cancellation
        if old.get("paused") != new.get("paused"):
            actions.append("package_paused" if new.get("paused") else "package_resumed")
            changes.append(f"Package {package_id} {'paused' if new.get('paused') else 'resumed'}")
            packages.add(package_id)
        if old.get("budget") != new.get("budget"):
            actions.append("updated_budget")
            changes.append(
                f"Package {package_id} budget from {_money(old.get('budget'), currency)} to "
                f"{_money(new.get('budget'), currency)}"
            )
            packages.add(package_id)
        for name, told in (
            ("impressions_goal", "impressions goal"),
            ("rate", "bid price"),
            ("targeting", "targeting"),
            ("bid_adjustments", "bid adjustments"),
        ):
            if old.get(name) != new.get(name):
                actions.append("updated_packages")
                if name in ("impressions_goal", "rate"):
                    shown = "{:,.0f}" if name == "impressions_goal" else "{:,.2f}"
                    was, now = (
                        shown.format(v) if isinstance(v, int | float) else "none"
                        for v in (old.get(name), new.get(name))
                    )
                    changes.append(f"Package {package_id} {told} from {was} to {now}")
                else:
                    changes.append(f"Package {package_id} {told} changed")
                packages.add(package_id)
    operations = [str(o) for o in details.get("operations") or []]
    if not changes and operations:
        # e.g. creative assignments, which the before/after views do not carry
        actions.append("updated_packages")
        told = ", ".join(dict.fromkeys(o.replace("_", " ") for o in operations))
        changes.append(f"Changed: {told}")
    summary = "; ".join(changes or ["Updated"]) + "."
    action = actions[0] if len(set(actions)) == 1 else _most_telling(actions)
    return action, summary, next(iter(packages)) if len(packages) == 1 else None


_RANK = (
    "canceled",
    "rejected",
    "completed",
    "activated",
    "paused",
    "resumed",
    "submitted_for_approval",
    "updated_dates",
    "updated_budget",
    "package_canceled",
    "package_paused",
    "package_resumed",
    "updated_packages",
)


def _most_telling(actions: list[str]) -> str:
    if not actions:
        return "updated"
    return min(actions, key=lambda a: _RANK.index(a) if a in _RANK else len(_RANK))
