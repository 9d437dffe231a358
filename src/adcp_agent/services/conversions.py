"""Conversion tracking (AdCP ``sync_event_sources`` and ``log_event``).

A buyer declares event sources on its accounts and logs conversion events to them in
batches of up to 10,000. Each event is validated on its own (a bad one is a partial
failure, never the batch), deduplicated by AdCP's key — its id within its type and
source — and attributed **last-click**: an event whose ``user_match.click_id`` names a
click this publisher tracked (``POST /api/v1/tracking/click``, its ``event_id``) on a
buy of the same account, no more than ``ATTRIBUTION_WINDOW`` before the event, is
credited to that click's package; anything else is kept unattributed (and counted in
``match_quality``). ``get_media_buy_delivery`` reports what was attributed to each
package in the period (``attributed``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from adcp_agent.clock import parse_instant
from adcp_agent.db.engine import Database
from adcp_agent.db.id_lists import ByIds
from adcp_agent.db.models_accounts import Account
from adcp_agent.db.models_delivery import ConversionEvent, EventSource, TrackingEvent
from adcp_agent.db.models_media import MediaBuy
from adcp_agent.db.types import UTCDateTime, chunked, utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import accounts, audit
from adcp_agent.services.identity import Caller

EVENT_TYPES = (
    "page_view", "view_content", "select_content", "select_item", "search", "share",
    "add_to_cart", "remove_from_cart", "viewed_cart", "add_to_wishlist",
    "initiate_checkout", "add_payment_info", "purchase", "refund", "lead", "qualify_lead",
    "close_convert_lead", "disqualify_lead", "complete_registration", "subscribe", "follow",
    "content_view", "watch_milestone", "start_trial", "app_install", "app_launch",
    "contact", "schedule", "donate", "submit_application", "custom",
)  # fmt: skip
ACTION_SOURCES = (
    "website", "app", "offline", "phone_call", "chat", "email", "in_store",
    "system_generated", "other",
)  # fmt: skip
ATTRIBUTION_WINDOW = timedelta(days=28)
FUTURE_GRACE = timedelta(minutes=5)
MAX_EVENTS = 10_000
_ID = re.compile(r"^[\x21-\x7E]{1,255}$")
_DOMAIN = re.compile(r"^(\*\.)?([a-z0-9-]{1,63}\.)+[a-z]{2,63}$")
SETUP = {
    "snippet_type": "server_only",
    "instructions": "Send events with log_event (event_source_id, events). To have a "
    "conversion attributed to the package that drove it, put in user_match.click_id the id "
    "this publisher tracked the click under (its click tracker passes it to your landing "
    "page).",
}


@dataclass
class SourceResult:
    event_source_id: str
    action: str  # created | updated | unchanged | deleted | failed
    source: EventSource | None = None
    errors: list[AdcpError] = field(default_factory=list)


def _list(value: Any, allowed: Sequence[str] | None, where: str, what: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise AdcpError(
            "VALIDATION_ERROR", f"{what} must be a non-empty list of strings.", field=where
        )
    for i, v in enumerate(value):
        if allowed is not None and v not in allowed:
            raise AdcpError(
                "VALIDATION_ERROR", f"'{v}' is not an AdCP {what[:-1]}.", field=f"{where}[{i}]"
            )
    return sorted(set(value))


def _settings(entry: dict[str, Any], where: str) -> dict[str, Any]:
    name = entry.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 255):
        raise AdcpError(
            "VALIDATION_ERROR", "name is at most 255 characters.", field=f"{where}.name"
        )
    action_source = entry.get("action_source")
    if action_source is not None and action_source not in ACTION_SOURCES:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"'{action_source}' is not an AdCP action source ({', '.join(ACTION_SOURCES)}).",
            field=f"{where}.action_source",
        )
    domains = _list(entry.get("allowed_domains"), None, f"{where}.allowed_domains", "domains")
    for i, domain in enumerate(domains or []):
        if not _DOMAIN.match(domain.lower()):
            raise AdcpError(
                "VALIDATION_ERROR",
                f"'{domain}' is not a domain name.",
                field=f"{where}.allowed_domains[{i}]",
            )
    return {
        "name": name,
        "event_types": _list(
            entry.get("event_types"), EVENT_TYPES, f"{where}.event_types", "event types"
        ),
        "action_source": action_source,
        "allowed_domains": [d.lower() for d in domains] if domains else None,
    }


async def sync_sources(
    db: Database,
    caller: Caller,
    account_ref: dict[str, Any] | None,
    entries: Sequence[dict[str, Any]] | None,
    *,
    delete_missing: bool = False,
) -> tuple[Account, list[SourceResult]]:
    """Upsert the account's event sources by ``event_source_id`` (None: just list them);
    with ``delete_missing``, remove the ones not sent (their logged events stay)."""
    account = await accounts.resolve(db, caller, account_ref)
    try:
        return account, await _sync_sources(db, caller, account, entries, delete_missing)
    except IntegrityError:  # the same source created by a sync at the same time: again
        return account, await _sync_sources(db, caller, account, entries, delete_missing)


async def _sync_sources(
    db: Database,
    caller: Caller,
    account: Account,
    entries: Sequence[dict[str, Any]] | None,
    delete_missing: bool,
) -> list[SourceResult]:
    results: list[SourceResult] = []
    async with db.transaction() as session:
        stored = {
            s.event_source_id: s
            for s in (
                await session.exec(
                    select(EventSource).where(
                        EventSource.tenant_id == caller.tenant_id,
                        EventSource.account_id == account.account_id,
                    )
                )
            ).all()
        }
        live = {k: s for k, s in stored.items() if s.deleted_at is None}
        if entries is None:
            return [SourceResult(k, "unchanged", s) for k, s in sorted(live.items())]
        sent: set[str] = set()
        now = utcnow()
        for i, entry in enumerate(entries):
            where = f"event_sources[{i}]"
            sid = entry.get("event_source_id")
            try:
                if not isinstance(sid, str) or not _ID.match(sid):
                    raise AdcpError(
                        "VALIDATION_ERROR",
                        "event_source_id is 1 to 255 printable characters without spaces.",
                        field=f"{where}.event_source_id",
                    )
                if sid in sent:
                    raise AdcpError(
                        "VALIDATION_ERROR",
                        f"Event source '{sid}' is sent twice.",
                        field=f"{where}.event_source_id",
                    )
                values = _settings(entry, where)
            except AdcpError as exc:
                results.append(
                    SourceResult(str(sid or f"event_sources[{i}]"), "failed", errors=[exc])
                )
                continue
            sent.add(sid)
            row = stored.get(sid)
            if row is None:
                row = EventSource(
                    tenant_id=caller.tenant_id, account_id=account.account_id, event_source_id=sid
                )
                action = "created"
            elif row.deleted_at is not None:
                action = "created"  # removed before: back
            else:
                before = (row.name, row.event_types, row.action_source, row.allowed_domains)
                action = "unchanged" if before == tuple(values.values()) else "updated"
            if action != "unchanged":
                for name, value in values.items():
                    setattr(row, name, value)
                row.deleted_at, row.updated_at = None, now
                session.add(row)
            results.append(SourceResult(sid, action, row))
        if delete_missing:
            for sid, row in sorted(live.items()):
                if sid not in sent:
                    row.deleted_at = row.updated_at = now
                    session.add(row)
                    results.append(SourceResult(sid, "deleted", row))
        changed = [r for r in results if r.action in ("created", "updated", "deleted")]
        if changed:
            await session.flush()
            await audit.record(
                session,
                caller,
                "event_sources.sync",
                target_type="account",
                target_id=account.account_id,
                details={"changes": {r.event_source_id: r.action for r in changed}},
            )
    return results


@dataclass
class Logged:
    received: int
    processed: int
    failures: list[dict[str, str]]
    warnings: list[str]
    match_quality: float


@dataclass
class _Event:
    event_id: str
    event_type: str
    event_time: datetime
    action_source: str | None
    click_id: str | None
    value: float | None
    currency: str | None


def _check(raw: Any, i: int, source: EventSource, now: datetime) -> _Event:
    """One event as AdCP ``core/event.json`` and the source allow it, or AdcpError."""
    if not isinstance(raw, dict):
        raise AdcpError("VALIDATION_ERROR", "An event is an object.", field=f"events[{i}]")
    event_id, event_type = raw.get("event_id"), raw.get("event_type")
    if not isinstance(event_id, str) or not _ID.match(event_id):
        raise AdcpError("VALIDATION_ERROR", "event_id is 1 to 255 printable characters.")
    if event_type not in EVENT_TYPES:
        raise AdcpError("VALIDATION_ERROR", f"'{event_type}' is not an AdCP event type.")
    if source.event_types and event_type not in source.event_types:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"Event source '{source.event_source_id}' takes {', '.join(source.event_types)} "
            f"events, not {event_type}.",
        )
    if event_type == "custom" and not raw.get("custom_event_name"):
        raise AdcpError("VALIDATION_ERROR", "A custom event needs custom_event_name.")
    when = parse_instant(raw.get("event_time"))
    if when is None:
        raise AdcpError("VALIDATION_ERROR", "event_time must be an ISO 8601 time with a zone.")
    if when > now + FUTURE_GRACE:
        raise AdcpError("VALIDATION_ERROR", "event_time is in the future.")
    action_source = raw.get("action_source")
    if action_source is not None and action_source not in ACTION_SOURCES:
        raise AdcpError("VALIDATION_ERROR", f"'{action_source}' is not an AdCP action source.")
    url = raw.get("event_source_url")
    if action_source == "website" and not isinstance(url, str):
        raise AdcpError("VALIDATION_ERROR", "A website event needs event_source_url.")
    if isinstance(url, str) and source.allowed_domains:
        from urllib.parse import urlsplit

        host = (urlsplit(url).hostname or "").lower()
        if not any(
            host == d or (d.startswith("*.") and host.endswith(d[1:]))
            for d in source.allowed_domains
        ):
            raise AdcpError(
                "VALIDATION_ERROR",
                f"'{host}' is not one of the domains event source "
                f"'{source.event_source_id}' allows.",
            )
    match = raw.get("user_match") if isinstance(raw.get("user_match"), dict) else {}
    click = match.get("click_id")
    data = raw.get("custom_data") if isinstance(raw.get("custom_data"), dict) else {}
    value, currency = data.get("value"), data.get("currency")
    if value is not None and (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise AdcpError("VALIDATION_ERROR", "custom_data.value must be a number ≥ 0.")
    if currency is not None and (
        not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency)
    ):
        raise AdcpError("VALIDATION_ERROR", "custom_data.currency must be an ISO 4217 code.")
    return _Event(
        event_id,
        event_type,
        when,
        action_source or source.action_source,
        click if isinstance(click, str) and 0 < len(click) <= 200 else None,
        float(value) if value is not None else None,
        currency,
    )


async def _source(db: Database, caller: Caller, event_source_id: str) -> EventSource:
    linked = [a.account_id for a in await accounts.linked(db, caller)]
    async with db.session() as session:
        found = (
            await session.exec(
                select(EventSource).where(
                    EventSource.tenant_id == caller.tenant_id,
                    EventSource.event_source_id == event_source_id,
                    col(EventSource.account_id).in_(linked),
                    col(EventSource.deleted_at).is_(None),
                )
            )
        ).all()
    if not found:
        raise AdcpError(
            "REFERENCE_NOT_FOUND",
            f"No event source '{event_source_id}' on your accounts.",
            field="event_source_id",
            suggestion="Configure it first with sync_event_sources.",
        )
    if len(found) > 1:
        raise AdcpError(
            "INVALID_REQUEST",
            f"Event source '{event_source_id}' exists on {len(found)} of your accounts; "
            "log_event cannot tell which one is meant.",
            field="event_source_id",
            suggestion="Give each account's sources their own ids.",
            details={"account_ids": sorted(s.account_id for s in found)},
        )
    return found[0]


async def log_events(
    db: Database,
    caller: Caller,
    event_source_id: str,
    events: Sequence[Any],
    *,
    now: datetime,
    test: bool = False,
) -> Logged:
    """Validate, deduplicate, attribute and store ``events`` (``test``: validate only)."""
    caller.require_principal()
    if not 1 <= len(events) <= MAX_EVENTS:
        raise AdcpError(
            "VALIDATION_ERROR", f"events takes 1 to {MAX_EVENTS:,} events.", field="events"
        )
    source = await _source(db, caller, event_source_id)
    failures: list[dict[str, str]] = []
    checked: list[_Event] = []
    for i, raw in enumerate(events):
        try:
            checked.append(_check(raw, i, source, now))
        except AdcpError as exc:
            ident = raw.get("event_id") if isinstance(raw, dict) else None
            failures.append(
                {
                    "event_id": ident if isinstance(ident, str) else f"events[{i}]",
                    "code": exc.code,
                    "message": exc.message,
                }
            )
    warnings: list[str] = []
    if test:
        warnings.append("test_event_code: the events were validated, not recorded.")
        return Logged(len(events), len(checked), failures, warnings, 0.0)
    for attempt in (1, 2):
        try:
            return await _store(db, caller, source, checked, len(events), failures, warnings)
        except IntegrityError:  # the same events logged at the same time: dedup again
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _store(
    db: Database,
    caller: Caller,
    source: EventSource,
    checked: list[_Event],
    received: int,
    failures: list[dict[str, str]],
    warnings: list[str],
) -> Logged:
    warnings = list(warnings)
    assert source.id is not None
    async with db.transaction() as session:
        keys = {(e.event_type, e.event_id) for e in checked}
        seen: set[tuple[str, str]] = set()
        for part in chunked(sorted({e.event_id for e in checked})):
            rows = await session.exec(
                select(ConversionEvent.event_type, ConversionEvent.event_id).where(
                    ConversionEvent.source_key == source.id, col(ConversionEvent.event_id).in_(part)
                )
            )
            seen |= {(t, i) for t, i in rows.all() if (t, i) in keys}
        clicks = await _clicks(session, caller, source, {e.click_id for e in checked if e.click_id})
        fresh: list[dict[str, Any]] = []
        repeated, matched, foreign, stamp = 0, 0, 0, utcnow()
        for e in checked:
            if (e.event_type, e.event_id) in seen:
                repeated += 1
                continue
            seen.add((e.event_type, e.event_id))
            hit = clicks.get(e.click_id) if e.click_id else None
            if hit is not None and not hit[2] <= e.event_time <= hit[2] + ATTRIBUTION_WINDOW:
                hit = None
            value = e.value
            if hit is not None:
                matched += 1
                if value is not None and e.currency not in (None, hit[3]):
                    foreign += 1
                    value = None
            fresh.append(
                {
                    "tenant_id": caller.tenant_id,
                    "source_key": source.id,
                    "event_type": e.event_type,
                    "event_id": e.event_id,
                    "event_time": e.event_time,
                    "action_source": e.action_source,
                    "value": value,
                    "click_id": e.click_id,
                    "media_buy_id": hit[0] if hit else None,
                    "package_id": hit[1] if hit else None,
                    "received_at": stamp,
                }
            )
        if fresh:  # one executemany: a batch of 10,000 is no 10,000 ORM objects
            await (await session.connection()).execute(_INSERT, fresh)
    if repeated:
        warnings.append(
            f"{repeated} event(s) were logged before (same id, type and source): not counted again."
        )
    if len(fresh) > matched:
        warnings.append(
            f"{len(fresh) - matched} event(s) matched no click of this account's buys in the "
            f"last {ATTRIBUTION_WINDOW.days} days (user_match.click_id): kept, not attributed."
        )
    if foreign:
        warnings.append(
            f"{foreign} event value(s) in another currency than their buy's: not counted."
        )
    return Logged(
        received,
        len(checked),
        failures,
        warnings,
        round(matched / len(fresh), 4) if fresh else 0.0,
    )


_INSERT = insert(ConversionEvent.__table__)  # type: ignore[arg-type]


async def _clicks(
    session: Any, caller: Caller, source: EventSource, click_ids: set[str]
) -> dict[str, tuple[str, str, datetime, str]]:
    """click id -> (buy, package, when, the buy's currency), for clicks tracked on the
    source's account's buys."""
    found: dict[str, tuple[str, str, datetime, str]] = {}
    for part in chunked(sorted(click_ids)):
        rows = await session.exec(
            select(
                TrackingEvent.event_id,
                TrackingEvent.media_buy_id,
                TrackingEvent.package_id,
                TrackingEvent.occurred_at,
                MediaBuy.currency,
            )
            .join(MediaBuy, col(MediaBuy.media_buy_id) == TrackingEvent.media_buy_id)
            .where(
                TrackingEvent.tenant_id == caller.tenant_id,
                TrackingEvent.kind == "click",
                col(TrackingEvent.event_id).in_(part),
                MediaBuy.account_id == source.account_id,
            )
        )
        for event_id, buy, package, when, currency in rows.all():
            found[event_id] = (buy, package, when, currency)
    return found


@dataclass
class Attributed:
    """Conversions attributed to one package in a report's period, by event type:
    type -> (count, value)."""

    by_type: dict[str, tuple[int, float]] = field(default_factory=dict)

    def add(self, event_type: str, count: int, value: float) -> None:
        was = self.by_type.get(event_type, (0, 0.0))
        self.by_type[event_type] = (was[0] + count, was[1] + value)

    @property
    def count(self) -> int:
        return sum(c for c, _ in self.by_type.values())

    @property
    def value(self) -> float:
        """Conversion value: what the events were worth, refunds taken off."""
        total = sum(v for t, (_, v) in self.by_type.items() if t != "refund")
        return max(0.0, total - self.by_type.get("refund", (0, 0.0))[1])


_ATTRIBUTED = ByIds(
    lambda in_ids: (
        core_select(
            col(ConversionEvent.package_id).label("package_id"),
            col(ConversionEvent.event_type).label("event_type"),
            func.count().label("count"),
            func.coalesce(func.sum(col(ConversionEvent.value)), 0.0).label("value"),
        )
        .where(
            in_ids(col(ConversionEvent.media_buy_id)),
            col(ConversionEvent.event_time) >= bindparam("start", type_=UTCDateTime()),
            col(ConversionEvent.event_time) < bindparam("end", type_=UTCDateTime()),
        )
        .group_by(col(ConversionEvent.package_id), col(ConversionEvent.event_type))
    )
)


async def attributed(
    db: Database, buy_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, Attributed]:
    """package id -> what was attributed to it with event times in [start, end)."""
    out: dict[str, Attributed] = {}
    for part in chunked(list(buy_ids)):
        for row in await db.read(*_ATTRIBUTED.bind(part, start=start, end=end)):
            out.setdefault(row.package_id, Attributed()).add(
                row.event_type, int(row.count), float(row.value)
            )
    return out
