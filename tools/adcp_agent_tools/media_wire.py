"""Media buys, packages and tasks → AdCP 3.1 wire objects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastmcp.tools.base import ToolResult

from adcp_agent import ADCP_VERSION
from adcp_agent.db.models_media import MediaBuy, Package, Task
from adcp_agent.services import approvals, buy_state
from adcp_agent.services.outbox import iso
from adcp_agent_tools.results import ok


def package(p: Package, buy: MediaBuy, agent_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "package_id": p.package_id,
        "product_id": p.product_id,
        "pricing_option_id": p.pricing_option_id,
        "budget": p.budget,
        "pacing": p.pacing,
        "format_ids": [{"agent_url": agent_url, "id": f} for f in p.format_ids],
        "start_time": iso(p.start_time or buy.start_time),
        "end_time": iso(p.end_time or buy.end_time),
        "paused": p.paused or buy.state == "paused",
    }
    if p.impressions_goal:
        out["impressions"] = p.impressions_goal
    if not p.guaranteed:
        out["bid_price"] = p.rate
    if p.targeting:
        out["targeting_overlay"] = p.targeting
    if p.optimization_goals:
        out["optimization_goals"] = p.optimization_goals
    if p.creative_ids:
        out["creative_assignments"] = [{"creative_id": c} for c in p.creative_ids]
    if buy.state == "canceled" or p.canceled_at is not None:
        out["canceled"] = True
    if p.canceled_at is not None:
        out["cancellation"] = cancellation(p)
    if p.buyer_ref:
        out["context"] = {"buyer_ref": p.buyer_ref}
    return out


def confirmed_at(buy: MediaBuy) -> str | None:
    if buy.state in ("pending_approval", "provisioning", "rejected"):
        return None
    return iso(buy.approved_at or buy.created_at)


def buy_summary(
    buy: MediaBuy, now: datetime, packages: Sequence[Package] | None = None
) -> dict[str, Any]:
    return {
        "media_buy_id": buy.media_buy_id,
        "media_buy_status": buy_state.wire_status(buy, now),
        "revision": buy.revision,
        "currency": buy.currency,
        "total_budget": buy.total_budget,
        **buy_state.actions(buy, now, packages),
    }


def create_completed(
    buy: MediaBuy,
    packages: Sequence[Package],
    agent_url: str,
    notes: Sequence[str] = (),
    *,
    now: datetime,
    creative_deadline: datetime | None = None,
) -> dict[str, Any]:
    message = (
        f"Media buy {buy.media_buy_id} booked: {len(packages)} package(s), "
        f"{buy.total_budget:,.2f} {buy.currency}, {iso(buy.start_time)} to {iso(buy.end_time)}."
    )
    if notes:
        message += " " + " ".join(notes)
    return {
        "status": "completed",
        "adcp_version": ADCP_VERSION,
        "message": message,
        **buy_summary(buy, now, packages),
        "confirmed_at": confirmed_at(buy),
        **({"creative_deadline": iso(creative_deadline)} if creative_deadline else {}),
        "packages": [package(p, buy, agent_url) for p in packages],
    }


def submitted(task: Task, extra_message: str = "") -> dict[str, Any]:
    return {
        "status": "submitted",
        "adcp_version": ADCP_VERSION,
        "task_id": task.task_id,
        "message": (task.message or "") + (f" {extra_message}" if extra_message else ""),
        "timestamp": iso(task.created_at),
    }


def as_result(payload: dict[str, Any]) -> ToolResult:
    """A stored or freshly rendered payload (with its own status) as a tool result."""
    status = payload.get("status", "completed")
    body = {k: v for k, v in payload.items() if k not in ("status", "adcp_version")}
    result = ok(body)
    assert isinstance(result.structured_content, dict)
    result.structured_content["status"] = status
    return result


def media_buy(
    view_buy: MediaBuy,
    packages: Sequence[Package],
    agent_url: str,
    now: datetime,
    account: dict[str, Any] | None = None,
    creative_deadline: datetime | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "media_buy_id": view_buy.media_buy_id,
        "status": buy_state.wire_status(view_buy, now),
        "status_as_of": iso(now),
        "currency": view_buy.currency,
        "total_budget": view_buy.total_budget,
        "start_time": iso(view_buy.start_time),
        "end_time": iso(view_buy.end_time),
        "confirmed_at": confirmed_at(view_buy),
        "revision": view_buy.revision,
        "created_at": iso(view_buy.created_at),
        "updated_at": iso(view_buy.updated_at),
        **buy_state.actions(view_buy, now, packages),
        "packages": [package(p, view_buy, agent_url) for p in packages],
    }
    if account:
        out["account"] = account
    if view_buy.buyer_ref:
        out["context"] = {"buyer_ref": view_buy.buyer_ref}
    if out["status"] == "canceled":
        out["cancellation"] = cancellation(view_buy)
    if creative_deadline is not None and out["status"] not in ("canceled", "rejected"):
        out["creative_deadline"] = iso(creative_deadline)
    if out["status"] == "rejected" and view_buy.rejection_reason:
        out["rejection_reason"] = view_buy.rejection_reason  # the publisher's words
    return out


def cancellation(canceled: MediaBuy | Package) -> dict[str, Any]:
    """AdCP's cancellation object of a buy or a package. A buy canceled before migration
    0026 has none stored: the buyer canceled it (nothing else could), at its last
    update."""
    out: dict[str, Any] = {
        "canceled_at": iso(canceled.canceled_at or canceled.updated_at),
        "canceled_by": canceled.canceled_by or "buyer",
    }
    if canceled.cancellation_reason:
        out["reason"] = canceled.cancellation_reason
    return out


def task_history(t: Task) -> list[dict[str, Any]]:
    """AdCP's task ``history`` (include_history): the answers the task gave — submitted
    when it was created, and its outcome once decided. Requests are not kept."""
    out: list[dict[str, Any]] = [
        {
            "timestamp": iso(t.created_at),
            "type": "response",
            "data": {"status": "submitted", "task_id": t.task_id, "task_type": t.task_type},
        }
    ]
    if t.status != "submitted":
        data: dict[str, Any] = {"status": t.status, "task_id": t.task_id}
        if t.message:
            data["message"] = t.message
        if t.result:
            data["result"] = t.result
        if t.error:
            data["error"] = t.error
        out.append({"timestamp": iso(t.updated_at), "type": "response", "data": data})
    return out


def task(t: Task, *, result: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "task_id": t.task_id,
        "task_type": t.task_type,
        "protocol": approvals.task_domain(t.task_type),
        "status": t.status,
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
        "has_webhook": False,
    }
    if t.message:
        out["message"] = t.message
    if t.status in ("completed", "rejected", "failed", "canceled"):
        out["completed_at"] = iso(t.updated_at)
    if t.error:
        out["error"] = t.error
    if result is not None:
        out["result"] = result
    return out
