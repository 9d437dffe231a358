"""update_media_buy in all its forms, plus the seed's pause/resume aliases.

Three request forms map onto one list of service operations:
- AdCP 3.1 patch: paused, canceled, end_time, packages[] {package_id, paused, budget,
  impressions, bid_price, pacing, targeting_overlay, creative_assignments};
- seed-003 ``action``: pause/resume_media_buy, pause/resume_package, update_package_budget,
  update_package_impressions, activate_order, submit_for_approval, approve_order (admins),
  archive_order;
- seed-002 ``updates``: remove_geo, add_geo, adjust_bid, set_daily_cap, shift_budget,
  set_status.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from pydantic import Field

from adcp_agent.errors import AdcpError
from adcp_agent.services import approvals, idempotency, media_updates
from adcp_agent.services.identity import new_id
from adcp_agent.services.media_updates import Op
from adcp_agent.services.push_notifications import PushNotificationConfig
from adcp_agent.services.reporting_webhooks import ReportingWebhookConfig
from adcp_agent.state import AppState
from adcp_agent_tools import media_wire
from adcp_agent_tools.buy_args import (
    REPORTING_WEBHOOK,
    CreativeAssignment,
    PackageIn,
    inline_groups,
    package_request,
)
from adcp_agent_tools.caller import current_caller
from adcp_agent_tools.inline_creatives import sync_inline
from adcp_agent_tools.media import MUTATES, _jsonable, tool_arguments
from adcp_agent_tools.params import AccountRef, GovernanceContext, IdempotencyKey, _Open, dump
from adcp_agent_tools.results import adcp_errors_as_results
from adcp_agent_tools.times import parse_time

Action = Literal[
    "pause_media_buy",
    "resume_media_buy",
    "pause_package",
    "resume_package",
    "update_package_budget",
    "update_package_impressions",
    "activate_order",
    "submit_for_approval",
    "approve_order",
    "archive_order",
]
_PACKAGE_FIELDS = {
    "package_id",
    "paused",
    "budget",
    "impressions",
    "bid_price",
    "pacing",
    "targeting_overlay",
    "creative_assignments",
    "creative_ids",
    "canceled",
    "cancellation_reason",
    "context",
    "ext",
}


class PackageUpdate(_Open):
    package_id: str
    paused: bool | None = None
    budget: float | None = None
    impressions: int | None = Field(default=None, gt=0)
    bid_price: float | None = Field(default=None, gt=0)
    pacing: Literal["even", "asap", "front_loaded"] | None = None
    targeting_overlay: dict[str, Any] | None = None
    optimization_goals: list[Any] | None = Field(
        default=None, description="Replaces the package's optimization goals (1 to 3)."
    )
    creative_assignments: list[CreativeAssignment] | None = None
    canceled: bool | None = None
    cancellation_reason: str | None = Field(default=None, max_length=500)


class Updates(_Open):
    """Seed-002 operation nodes; each applies to the whole buy."""

    remove_geo: dict[str, list[str]] | None = None
    add_geo: dict[str, list[str]] | None = None
    adjust_bid: dict[str, Any] | None = None
    set_daily_cap: dict[str, float] | None = None
    shift_budget: dict[str, Any] | None = None
    set_status: dict[str, Literal["active", "paused"]] | None = None


def _cancel_op(
    kind: str, where: str, package_id: str | None, canceled: bool | None, reason: str | None
) -> list[Op]:
    """A buy's or a package's ``canceled`` (and ``cancellation_reason``, which goes only
    with it) as an op; ``where`` prefixes the fields named in errors."""
    if reason is not None and canceled is None:
        raise AdcpError(
            "INVALID_REQUEST",
            "cancellation_reason goes with canceled: true.",
            field=f"{where}cancellation_reason",
        )
    if canceled is None:
        return []
    if canceled is not True:
        raise AdcpError("VALIDATION_ERROR", "canceled can only be true.", field=f"{where}canceled")
    return [Op(kind, f"{where}canceled", package_id, {"reason": reason})]


def _patch_ops(
    paused: bool | None,
    canceled: bool | None,
    end_time: str | None,
    packages: list[PackageUpdate] | None,
    cancellation_reason: str | None = None,
    new_packages: list[PackageIn] | None = None,
    start_time: str | None = None,
) -> list[Op]:
    ops = _cancel_op("cancel", "", None, canceled, cancellation_reason)
    if paused is not None:
        ops.append(Op("pause" if paused else "resume", "paused"))
    end = parse_time(end_time, "end_time") if end_time is not None else None
    if start_time is not None:
        # With an end, one move of the whole flight (each line changed once).
        start = None if start_time == "asap" else parse_time(start_time, "start_time")
        ops.append(Op("flight", "start_time", value=(start, end)))
    elif end is not None:
        ops.append(Op("end_time", "end_time", value=end))
    for i, p in enumerate(packages or []):
        where = f"packages[{i}]"
        unknown = sorted(set(p.model_extra or {}) - _PACKAGE_FIELDS)
        if unknown:
            raise AdcpError(
                "UNSUPPORTED_FEATURE",
                f"Package field '{unknown[0]}' cannot be changed here; nothing was applied.",
                field=f"{where}.{unknown[0]}",
            )
        pid = p.package_id
        ops += _cancel_op("package_cancel", f"{where}.", pid, p.canceled, p.cancellation_reason)
        if p.paused is not None:
            ops.append(
                Op("package_pause" if p.paused else "package_resume", f"{where}.paused", pid)
            )
        if p.budget is not None:
            ops.append(Op("package_budget", f"{where}.budget", pid, p.budget))
        if p.impressions is not None:
            ops.append(Op("package_impressions", f"{where}.impressions", pid, p.impressions))
        if p.bid_price is not None:
            ops.append(Op("package_bid", f"{where}.bid_price", pid, p.bid_price))
        if p.pacing is not None:
            ops.append(Op("package_pacing", f"{where}.pacing", pid, p.pacing))
        if p.targeting_overlay is not None:
            ops.append(
                Op("package_targeting", f"{where}.targeting_overlay", pid, p.targeting_overlay)
            )
        if p.optimization_goals is not None:
            ops.append(Op("package_goals", where, pid, p.optimization_goals))
        if p.creative_assignments is not None:
            ops.append(
                Op(
                    "package_creatives",
                    f"{where}.creative_assignments",
                    pid,
                    [a.creative_id for a in p.creative_assignments],
                )
            )
    # Last: a line added runs the buy as the changes above leave it (its end, say).
    for i, n in enumerate(new_packages or []):
        ops.append(
            Op(
                "add_package",
                f"new_packages[{i}]",
                new_id("pkg"),
                package_request(n, f"new_packages[{i}]"),
            )
        )
    return ops


def _action_ops(
    action: str, package_id: str | None, budget: float | None, impressions: int | None
) -> list[Op]:
    def need_package() -> str:
        if not package_id:
            raise AdcpError("INVALID_REQUEST", f"'{action}' needs package_id.", field="package_id")
        return package_id

    if action in ("pause_media_buy", "resume_media_buy"):
        return [Op(action.split("_")[0], "action")]
    if action in ("pause_package", "resume_package"):
        return [Op(f"package_{action.split('_')[0]}", "action", need_package())]
    if action == "update_package_budget":
        if budget is None:
            raise AdcpError(
                "INVALID_REQUEST", "update_package_budget needs budget.", field="budget"
            )
        return [Op("package_budget", "budget", need_package(), budget)]
    if action == "update_package_impressions":
        if impressions is None:
            raise AdcpError(
                "INVALID_REQUEST",
                "update_package_impressions needs impressions.",
                field="impressions",
            )
        return [Op("package_impressions", "impressions", need_package(), impressions)]
    return [
        Op(
            {
                "activate_order": "activate",
                "submit_for_approval": "submit_for_approval",
                "archive_order": "archive",
            }[action],
            "action",
        )
    ]


def _seed_ops(updates: Updates) -> list[Op]:
    ops: list[Op] = []
    if updates.remove_geo is not None:
        ops.append(
            Op("remove_geo", "updates.remove_geo", value=updates.remove_geo.get("countries", []))
        )
    if updates.add_geo is not None:
        ops.append(Op("add_geo", "updates.add_geo", value=updates.add_geo.get("countries", [])))
    if updates.adjust_bid is not None:
        device = updates.adjust_bid.get("device")
        change = updates.adjust_bid.get("change_percent")
        if not isinstance(device, str) or not isinstance(change, int | float):
            raise AdcpError(
                "VALIDATION_ERROR",
                "adjust_bid needs device and change_percent.",
                field="updates.adjust_bid",
            )
        ops.append(Op("adjust_bid", "updates.adjust_bid", value={device: float(change)}))
    if updates.set_daily_cap is not None:
        ops.append(
            Op(
                "daily_cap",
                "updates.set_daily_cap.amount",
                value=updates.set_daily_cap.get("amount", 0),
            )
        )
    if updates.shift_budget is not None:
        s = updates.shift_budget
        percent = s.get("percent")
        if not isinstance(percent, int | float):
            raise AdcpError(
                "VALIDATION_ERROR",
                "shift_budget needs a numeric percent.",
                field="updates.shift_budget.percent",
            )
        if s.get("from_package_id") or s.get("to_package_id"):
            ops.append(
                Op(
                    "shift_budget",
                    "updates.shift_budget",
                    value=(s.get("from_package_id"), s.get("to_package_id"), percent),
                )
            )
        elif s.get("from_device") or s.get("to_device"):
            shift: dict[str, float] = {}
            if s.get("from_device"):
                shift[s["from_device"]] = -float(percent)
            if s.get("to_device"):
                shift[s["to_device"]] = float(percent)
            ops.append(Op("adjust_bid", "updates.shift_budget", value=shift))
        else:
            raise AdcpError(
                "UNSUPPORTED_FEATURE",
                "shift_budget moves budget between packages (from_package_id/to_package_id) "
                "or bid weight between devices; audience shifts are not offered.",
                field="updates.shift_budget",
            )
    if updates.set_status is not None:
        status = updates.set_status.get("status")
        ops.append(Op("resume" if status == "active" else "pause", "updates.set_status"))
    unknown = sorted(set(updates.model_extra or {}))
    if unknown:
        raise AdcpError(
            "UNSUPPORTED_FEATURE",
            f"Unknown operation '{unknown[0]}'.",
            field=f"updates.{unknown[0]}",
        )
    return ops


def register(mcp: FastMCP, state: AppState) -> None:
    def render(outcome: media_updates.UpdateOutcome) -> dict[str, Any]:
        if outcome.task is not None:
            return media_wire.submitted(outcome.task)
        now = state.clock.now()
        by_id = {p.package_id: p for p in outcome.packages}
        return {
            "status": "completed",
            "message": ("Applied: " + "; ".join(outcome.changes) + ".")
            if outcome.changes
            else "No ad-server change was needed.",
            **media_wire.buy_summary(outcome.buy, now, outcome.packages),
            "implementation_date": media_wire.iso(now),
            "affected_packages": [
                media_wire.package(by_id[pid], outcome.buy, state.agent_url)
                for pid in outcome.affected
            ],
            "changes_applied": outcome.changes,
        }

    async def run(
        caller,
        media_buy_id,
        ops,
        account,
        revision,
        key,
        raw,
        push=None,
        reporting=None,
        governance_context=None,
        inline=(),
    ) -> ToolResult:  # type: ignore[no-untyped-def]
        async def change(completion: idempotency.Completion) -> dict[str, Any]:
            # A request not seen before: the inline creatives of its new packages join
            # the library first (the update assigns them).
            await sync_inline(state, caller, dump(account), inline)
            return await media_updates.update(
                state,
                caller,
                media_buy_id,
                ops,
                account_ref=dump(account),
                revision=revision,
                completion=completion,
                render=render,
                push_notification_config=push,
                reporting_webhook=reporting,
                governance_context=governance_context,
            )

        response = await idempotency.run_once(
            state.db, caller, "update_media_buy", key, raw, change
        )
        return media_wire.as_result(response)

    @mcp.tool(name="update_media_buy", annotations=MUTATES, output_schema=None)
    @adcp_errors_as_results
    async def update_media_buy(
        media_buy_id: Annotated[str, Field(min_length=1)],
        account: AccountRef | None = None,
        revision: Annotated[
            int | None, Field(ge=1, description="Fail with CONFLICT if the buy changed since.")
        ] = None,
        paused: bool | None = None,
        canceled: bool | None = None,
        cancellation_reason: Annotated[
            str | None, Field(max_length=500, description="Why, with canceled: true (kept).")
        ] = None,
        start_time: Annotated[
            str | None,
            Field(description="New start (ISO 8601 with zone, or 'asap'), before the buy starts."),
        ] = None,
        end_time: Annotated[str | None, Field(description="New end (ISO 8601 with zone).")] = None,
        packages: list[PackageUpdate] | None = None,
        new_packages: Annotated[
            list[PackageIn] | None,
            Field(
                min_length=1,
                description="Packages to add, as create_media_buy's packages (guaranteed "
                "ones only while the buy awaits approval); once the buy runs, they start now.",
            ),
        ] = None,
        action: Annotated[Action | None, Field(description="Seed-003 lifecycle action.")] = None,
        package_id: str | None = None,
        budget: float | None = None,
        impressions: int | None = None,
        updates: Annotated[Updates | None, Field(description="Seed-002 operations.")] = None,
        reason: str | None = None,
        idempotency_key: IdempotencyKey = None,
        push_notification_config: Annotated[
            PushNotificationConfig | None,
            Field(description="Webhook for this buy's later status changes (replaces any)."),
        ] = None,
        reporting_webhook: Annotated[
            ReportingWebhookConfig | None,
            Field(
                description=REPORTING_WEBHOOK + " Replaces the buy's; alone, it changes "
                "nothing else."
            ),
        ] = None,
        governance_context: GovernanceContext = None,
    ) -> ToolResult:
        """Change a media buy: pause/resume (paused), cancel (canceled: true), move the
        start (start_time, before it starts) or the end (end_time), add packages
        (new_packages), or per package budget, impressions, bid_price, pacing,
        targeting_overlay (replaces the old one), canceled. Seed forms: `action`
        (pause_media_buy, resume_media_buy, pause_package, resume_package,
        update_package_budget, update_package_impressions, activate_order,
        submit_for_approval, approve_order, archive_order) and `updates` {remove_geo,
        add_geo, adjust_bid, set_daily_cap, shift_budget, set_status}. Illegal
        transitions return INVALID_STATE listing the allowed actions. Example:
        {media_buy_id: 'mb_…', paused: true}."""
        caller = current_caller()
        raw = {k: _jsonable(v) for k, v in tool_arguments().items() if k != "idempotency_key"}
        forms = [
            n
            for n, used in (
                ("action", action is not None),
                ("updates", updates is not None),
                (
                    "patch",
                    any(
                        v is not None
                        for v in (
                            paused,
                            canceled,
                            start_time,
                            end_time,
                            packages,
                            cancellation_reason,
                            new_packages,
                        )
                    ),
                ),
            )
            if used
        ]
        if len(forms) > 1:
            raise AdcpError(
                "INVALID_REQUEST",
                f"Use one request form at a time, not {' and '.join(forms)}.",
                field=forms[1],
            )
        if action == "approve_order":
            approver = approvals.approver_for(caller)
            task = await approvals.pending_task_for(state, caller.tenant_id, media_buy_id)
            _, buy = await approvals.decide(
                state, approver, task.task_id, approve=True, reason=reason
            )
            return media_wire.as_result(
                {
                    "status": "completed",
                    "message": f"Order {media_buy_id} approved; it is now booked.",
                    **media_wire.buy_summary(buy, state.clock.now()),
                    "implementation_date": media_wire.iso(buy.approved_at),
                    "affected_packages": [],
                }
            )
        if action is not None:
            ops = _action_ops(action, package_id, budget, impressions)
        elif updates is not None:
            ops = _seed_ops(updates)
        elif not forms and reporting_webhook is not None:
            ops = []  # the reporting webhook alone
        else:
            ops = _patch_ops(
                paused, canceled, end_time, packages, cancellation_reason, new_packages, start_time
            )
        return await run(
            caller,
            media_buy_id,
            ops,
            account,
            revision,
            idempotency_key,
            raw,
            push_notification_config,
            reporting_webhook,
            governance_context,
            inline_groups(new_packages or [], "new_packages"),
        )

    for verb in ("pause", "resume"):

        def make(verb: str):  # type: ignore[no-untyped-def]
            async def alias(
                media_buy_id: Annotated[str, Field(min_length=1)],
                reason: str | None = None,
                account: AccountRef | None = None,
                idempotency_key: IdempotencyKey = None,
            ) -> ToolResult:
                caller = current_caller()
                raw = {"media_buy_id": media_buy_id, "verb": verb, "reason": reason}
                return await run(
                    caller,
                    media_buy_id,
                    [Op(verb, "media_buy_id")],
                    account,
                    None,
                    idempotency_key,
                    raw,
                )

            alias.__doc__ = (
                f"{verb.capitalize()} a media buy (seed-003 alias of update_media_buy "
                f"with paused: {'true' if verb == 'pause' else 'false'})."
            )
            return adcp_errors_as_results(alias)

        mcp.tool(make(verb), name=f"{verb}_media_buy", annotations=MUTATES, output_schema=None)
