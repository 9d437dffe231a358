"""AdCP reporting webhooks: the ``reporting_webhook`` a buyer sends with create_media_buy
or update_media_buy, and the scheduled delivery reports sent to it.

Each period (an hour, a UTC day or a calendar month of business time) is reported once
it has closed:
the buy's get_media_buy_delivery report for exactly that period, with AdCP's webhook
fields — ``notification_type`` (``scheduled``; ``final`` for the period the buy ends
in, or the first to close after it was canceled or rejected), ``sequence_number``
(1, 2, …) and ``next_expected_at``. The outbox worker finds what is due
(``send_due``); each report is written as an outbox event with its delivery in the
transaction that moves the webhook to its next period, so a report is made once and
then retried like every other delivery until the buyer's server takes it.
Authentication is push notifications': ``Bearer`` or ``HMAC-SHA256`` (sealed at rest),
and the ``token`` echoed in the payload."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam, select, update

from adcp_agent.clock import floor_hour
from adcp_agent.db import statements
from adcp_agent.db.models import Tenant
from adcp_agent.db.models_events import OutboxEvent, ReportingWebhook
from adcp_agent.db.models_media import MediaBuy
from adcp_agent.db.statements import Tx
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.sealing import SecretBox
from adcp_agent.services import delivery_reports, delivery_wire, outbox, ssrf
from adcp_agent.services.identity import Caller
from adcp_agent.services.push_notifications import PushAuthentication
from adcp_agent.state import AppState

log = logging.getLogger(__name__)

FIELD = "reporting_webhook"
EVENT_TYPE = "media_buy.delivery_report"
CHANNEL = "report"
# What each channel's products report (get_products' reporting_capabilities).
METRICS_BY_CHANNEL = {
    "display": ["impressions", "spend", "clicks", "ctr", "viewability"],
    "olv": ["impressions", "spend", "clicks", "completed_views", "completion_rate"],
    "ctv": ["impressions", "spend", "completed_views", "completion_rate"],
    "streaming_audio": ["impressions", "spend", "completed_views", "completion_rate"],
    "podcast": ["impressions", "spend", "completed_views", "completion_rate"],
}
# Left out of a report whose requested_metrics do not name them (impressions and
# spend always go: AdCP's delivery totals require them).
_OPTIONAL = ("clicks", "ctr", "completed_views", "completion_rate", "viewability")
_FINAL_STATES = ("canceled", "rejected")


def metrics_of(channels: Sequence[str]) -> list[str]:
    out: list[str] = []
    for channel in channels:
        for m in METRICS_BY_CHANNEL.get(channel, ["impressions", "spend"]):
            if m not in out:
                out.append(m)
    return out


class ReportingWebhookConfig(BaseModel):
    """AdCP ``core/reporting-webhook.json`` (unknown keys tolerated)."""

    model_config = ConfigDict(extra="allow")

    url: str = Field(min_length=1, max_length=2048, description="Where reports are POSTed.")
    token: str | None = Field(
        default=None, min_length=16, max_length=4096, description="Echoed in every report."
    )
    authentication: PushAuthentication = Field(
        description="{schemes: ['Bearer'|'HMAC-SHA256'], credentials} (32+ characters)."
    )
    reporting_frequency: Literal["hourly", "daily", "monthly"]
    requested_metrics: list[str] | None = Field(default=None, max_length=40)


def accept(
    tenant: Tenant,
    config: ReportingWebhookConfig | None,
    box: SecretBox,
    channels: Sequence[str],
) -> ReportingWebhookConfig | None:
    """``config`` checked against what the buy's products (their ``channels``) report,
    with its secrets sealed for storing (``save``). Refused before anything is done."""
    if config is None:
        return None
    available = metrics_of(channels)
    unknown = sorted(set(config.requested_metrics or ()) - set(available))
    if unknown:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"This buy's products do not report {', '.join(unknown)}. Nothing was done.",
            field=f"{FIELD}.requested_metrics",
            details={"available_metrics": available},
        )
    allowance = ssrf.Allowance.from_features(tenant.features)
    ssrf.check_registration(config.url, allowance, field=f"{FIELD}.url")
    auth = config.authentication
    return config.model_copy(
        update={
            "token": box.seal_optional(config.token),
            "authentication": auth.model_copy(update={"credentials": box.seal(auth.credentials)}),
        }
    )


def first_period(frequency: str, buy: MediaBuy, now: datetime) -> datetime:
    """Where reporting begins: the period the buy starts in, or now's if it runs."""
    start = floor_hour(max(now, buy.start_time))
    if frequency == "monthly":
        return start.replace(day=1, hour=0)
    return start.replace(hour=0) if frequency == "daily" else start


def period_end(frequency: str, start: datetime) -> datetime:
    """Where the period from ``start`` ends (the next one's start): an hour, a UTC day,
    or the calendar month."""
    if frequency == "hourly":
        return start + timedelta(hours=1)
    if frequency == "daily":
        return start + timedelta(days=1)
    first = start.replace(day=1, hour=0)
    return (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )


_BY_BUY = ReportingWebhook.__table__.c  # type: ignore[attr-defined]
_REPLACE = (
    update(ReportingWebhook.__table__)  # type: ignore[arg-type]
    .where(_BY_BUY.media_buy_id == bindparam("buy"))
    .values(
        url=bindparam("url"),
        token=bindparam("token"),
        auth_scheme=bindparam("scheme"),
        auth_credentials=bindparam("credentials"),
        frequency=bindparam("frequency"),
        requested_metrics=bindparam("metrics"),
        period_start=bindparam("period_start"),
        next_due_at=bindparam("due"),
        updated_at=bindparam("now"),
    )
)


async def save(
    tx: Tx, buy: MediaBuy, config: ReportingWebhookConfig, now: datetime, *, new: bool = False
) -> None:
    """Register (or replace) the buy's reporting webhook in the caller's transaction:
    from the period ``now`` (business time) or the buy's start falls in. A replaced
    one keeps its numbering. ``new``: the buy is being booked, so there is none to
    replace (and in a ``together`` block a write's row count is not known)."""
    start = first_period(config.reporting_frequency, buy, now)
    values = {
        "buy": buy.media_buy_id,
        "url": config.url,
        "token": config.token,
        "scheme": config.authentication.schemes[0],
        "credentials": config.authentication.credentials,
        "frequency": config.reporting_frequency,
        "metrics": config.requested_metrics,
        "period_start": start,
        "due": period_end(config.reporting_frequency, start),
        "now": utcnow(),
    }
    if not new and await statements.execute(tx, _REPLACE, values) == 1:
        return
    row = statements.build(
        ReportingWebhook,
        media_buy_id=buy.media_buy_id,
        tenant_id=buy.tenant_id,
        principal_id=buy.principal_id,
        url=config.url,
        token=config.token,
        auth_scheme=values["scheme"],
        auth_credentials=values["credentials"],
        frequency=config.reporting_frequency,
        requested_metrics=config.requested_metrics,
        period_start=start,
        next_due_at=values["due"],
    )
    await statements.insert(tx, row)


_DUE = (
    select(*statements.model_columns(ReportingWebhook))
    .where(_BY_BUY.next_due_at <= bindparam("now"))
    .order_by(_BY_BUY.next_due_at)
    .limit(50)
)
_ADVANCE = (
    update(ReportingWebhook.__table__)  # type: ignore[arg-type]
    .where(
        _BY_BUY.media_buy_id == bindparam("buy"),
        _BY_BUY.sequence == bindparam("sent"),
        _BY_BUY.next_due_at == bindparam("was_due"),
    )
    .values(
        sequence=bindparam("sequence"),
        period_start=bindparam("period_start"),
        next_due_at=bindparam("due"),
        updated_at=bindparam("now"),
    )
)


async def send_due(state: AppState, now: datetime, limit: int = 200) -> int:
    """Make every report due at ``now`` (business time), oldest period first; how many
    were made. A webhook behind by several periods catches up one report each. At most
    ``limit`` attempts a call, made or not (one another worker made first is not): the
    rest wait for the next poll."""
    made = attempts = 0
    while attempts < limit:
        hooks = await state.db.read_models(ReportingWebhook, _DUE, {"now": now})
        if not hooks:
            break
        for hook in hooks[: limit - attempts]:
            attempts += 1
            try:
                made += await _send_one(state, hook, now)
            except AdcpError as exc:  # e.g. the ad server down: retried at the next poll
                log.warning("delivery report for %s not made: %s", hook.media_buy_id, exc.message)
                return made
    return made


async def _send_one(state: AppState, hook: ReportingWebhook, now: datetime) -> int:
    assert hook.next_due_at is not None
    start, end = hook.period_start, hook.next_due_at
    caller = Caller(tenant_id=hook.tenant_id, tenant_name="", principal_id=hook.principal_id)
    query = delivery_reports.ReportQuery(
        media_buy_ids=[hook.media_buy_id], hourly=True, window=(start, end), statuses=()
    )
    report = await delivery_reports.report(state, caller, query)
    if not report.buys:  # not the buyer's to see any more: nothing more to send
        async with state.db.write() as tx:
            await statements.execute(tx, _ADVANCE, _advance(hook, end, None))
        return 0
    buy = report.buys[0].buy
    final = end >= buy.end_time or buy.state in _FINAL_STATES
    payload = delivery_wire.delivery_payload(report, include_package_daily=False, granularity=None)
    _only(payload, hook.requested_metrics)
    payload.update(
        notification_type="final" if final else "scheduled",
        sequence_number=hook.sequence + 1,
        partial_data=bool(report.warnings),
    )
    if not final:
        payload["next_expected_at"] = outbox.iso(period_end(hook.frequency, end))
    async with state.db.write() as tx:
        moved = await statements.execute(
            tx,
            _ADVANCE,
            _advance(hook, end, None if final else period_end(hook.frequency, end), sent=1),
        )
        if moved != 1:  # another worker made it, or the webhook was replaced meanwhile
            return 0
        event = statements.build(
            OutboxEvent,
            event_id=outbox.new_event_id(),
            tenant_id=hook.tenant_id,
            event_type=EVENT_TYPE,
            status="pending",
            principal_id=hook.principal_id,
            media_buy_id=hook.media_buy_id,
            dedupe_key=f"report:{hook.media_buy_id}:{hook.sequence + 1}",
            payload=payload,
        )
        delivery = outbox.delivery_for(event, CHANNEL, hook.url, hook.media_buy_id)
        await statements.insert(tx, event)
        await statements.insert(tx, delivery)
    return 1


def _advance(
    hook: ReportingWebhook, end: datetime, due: datetime | None, *, sent: int = 0
) -> dict[str, Any]:
    """``_ADVANCE``'s parameters: the next period from ``end``, due at ``due`` (None:
    no more), ``sent`` reports more than before — if nobody moved the webhook since it
    was read."""
    return {
        "buy": hook.media_buy_id,
        "sent": hook.sequence,
        "was_due": hook.next_due_at,
        "sequence": hook.sequence + sent,
        "period_start": end,
        "due": due,
        "now": utcnow(),
    }


def _only(payload: dict[str, Any], requested: list[str] | None) -> None:
    """Drop the metrics the buyer did not ask for (all go when it asked for none)."""
    if not requested:
        return
    drop = [m for m in _OPTIONAL if m not in requested]
    for buy in payload["media_buy_deliveries"]:
        for row in (buy["totals"], *buy["by_package"]):
            for name in drop:
                row.pop(name, None)


def body(event: OutboxEvent, token: str | None) -> dict[str, Any]:
    """What the buyer's server receives: the report, with its ``token``."""
    out = dict(event.payload)
    if token:
        out["token"] = token
    return out
