"""Delivery-phase governance: a governance agent that asked for delivery figures (its
verdict's ``next_check``) gets them when they are due — ``check_governance`` with phase
``delivery`` and the buy's spend and impressions since the last report and in all, its
pacing and the reporting period — from the outbox worker, on the business clock.

- ``approved``: the buy runs on; the next report is due at the new ``next_check`` (none
  when the agent gives none).
- ``denied``: the buy is paused on the ad server (history: paused by the governance
  agent; the buyer's push notification as for any pause). Resuming it is a change the
  agent is asked about again.
- no verdict: asked again in an hour; the buy runs on meanwhile.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlmodel import col

from adcp_agent.clock import floor_hour
from adcp_agent.db.models import Tenant
from adcp_agent.db.models_media import MediaBuy
from adcp_agent.db.types import UTCDateTime
from adcp_agent.errors import AdcpError
from adcp_agent.services import delivery_reports, governance, media_updates
from adcp_agent.services.delivery import ceil_hour
from adcp_agent.services.idempotency import Completion
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState

log = logging.getLogger(__name__)

RETRY = timedelta(hours=1)
BATCH = 20
_DUE = (
    select(col(MediaBuy.media_buy_id).label("media_buy_id"))
    .where(
        col(MediaBuy.governance_next_check) <= bindparam("now", type_=UTCDateTime()),
        col(MediaBuy.state).in_(("live", "paused")),
    )
    .order_by(col(MediaBuy.governance_next_check))
    .limit(BATCH)
)


class _Governance(Caller):
    """The governance agent as the actor of what its verdict does (a buy's history)."""

    @property
    def actor(self) -> str:
        return "governance_agent"


async def check_due(state: AppState, now: datetime) -> int:
    """Send the delivery reports due at ``now``; how many verdicts came back."""
    due = [row.media_buy_id for row in await state.db.read(_DUE, {"now": now})]
    answered = 0
    for media_buy_id in due:
        try:
            answered += await _report(state, media_buy_id, now)
        except AdcpError as exc:
            log.warning("delivery check of %s: %s (%s)", media_buy_id, exc.code, exc.message)
            await _schedule(state, media_buy_id, next_check=now + RETRY)
    return answered


async def _report(state: AppState, media_buy_id: str, now: datetime) -> int:
    async with state.db.reading() as session:
        buy = await session.get(MediaBuy, media_buy_id)
        tenant = await session.get(Tenant, buy.tenant_id) if buy is not None else None
    if buy is None or tenant is None:
        return 0
    account = await governance.account_for(state, buy)
    if buy.plan_id is None or account is None:  # no plan, or no agent any more
        await _schedule(state, media_buy_id, next_check=None)
        return 0
    start = buy.governance_reported_until or floor_hour(buy.start_time)
    end = min(floor_hour(now), ceil_hour(buy.end_time))
    if end <= start:  # no closed hour to report: later, or never again once it ended
        done = now >= buy.end_time
        await _schedule(state, media_buy_id, next_check=None if done else now + RETRY)
        return 0
    caller = Caller(tenant_id=buy.tenant_id, tenant_name="", principal_id=buy.principal_id)
    query = delivery_reports.ReportQuery(
        media_buy_ids=[media_buy_id], hourly=True, window=(start, end), statuses=()
    )
    report = await delivery_reports.report(state, caller, query)
    if not report.buys:
        return 0
    figures = report.buys[0]
    packages = [pr.package for pr in figures.packages]
    products = {pr.package.product_id: pr.product for pr in figures.packages if pr.product}
    try:
        approval = await governance.check(
            state,
            tenant,
            account,
            plan_id=buy.plan_id,
            what=f"continued delivery of media buy {media_buy_id}",
            phase="delivery",
            governance_context=buy.governance_context,
            planned=governance.planned_delivery(buy, packages, products),
            delivery_metrics=_metrics(figures, start, end),
        )
    except AdcpError as exc:
        if exc.code != "GOVERNANCE_DENIED":
            raise
        await _pause(state, buy, exc)
        await _schedule(state, media_buy_id, next_check=None, reported_until=end)
        return 1
    await _schedule(
        state,
        media_buy_id,
        next_check=approval.next_check,
        reported_until=end,
        context=approval.governance_context,
    )
    return 1


def _metrics(figures: Any, start: datetime, end: datetime) -> dict[str, Any]:
    period, lifetime = figures.period, delivery_reports.Totals()
    for pr in figures.packages:
        lifetime.add(pr.lifetime)
    out: dict[str, Any] = {
        "reporting_period": {
            "start": start.isoformat().replace("+00:00", "Z"),
            "end": end.isoformat().replace("+00:00", "Z"),
        },
        "spend": round(period.spend, 2),
        "cumulative_spend": round(lifetime.spend, 2),
        "impressions": period.impressions,
        "cumulative_impressions": lifetime.impressions,
    }
    if figures.pacing_index is not None:
        index = figures.pacing_index
        out["pacing"] = "ahead" if index > 1.1 else "behind" if index < 0.9 else "on_track"
    return out


async def _pause(state: AppState, buy: MediaBuy, denial: AdcpError) -> None:
    """Pause a buy its governance agent no longer approves (when it is running)."""
    if buy.state != "live":
        return
    agent = _Governance(tenant_id=buy.tenant_id, tenant_name="", principal_id=buy.principal_id)
    await media_updates.update(
        state,
        agent,
        buy.media_buy_id,
        [media_updates.Op("pause", "governance")],
        completion=Completion(None),
        render=lambda _outcome: {},
    )
    log.info("media buy %s paused: %s", buy.media_buy_id, denial.message)


async def _schedule(
    state: AppState,
    media_buy_id: str,
    *,
    next_check: datetime | None,
    reported_until: datetime | None = None,
    context: str | None = None,
) -> None:
    async with state.db.transaction() as session:
        buy = await session.get(MediaBuy, media_buy_id)
        if buy is None:
            return
        buy.governance_next_check = next_check
        if reported_until is not None:
            buy.governance_reported_until = reported_until
        if context:
            buy.governance_context = context
        session.add(buy)
