"""The creative library: upsert by creative_id, validation against the format, the
tenant's approval policy, assignment to packages, and pushing approved creatives to the
ad server (only approved creatives ever reach it, so only they can deliver)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, false
from sqlalchemy import delete as sa_delete
from sqlalchemy import update as sa_update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.adapter_protocol import CreativeSpec
from adcp_agent.db import statements
from adcp_agent.db.models import CreativeFormat, Principal, Tenant
from adcp_agent.db.models_creatives import Creative, CreativeAssignment
from adcp_agent.db.models_media import MediaBuy, Package
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import accounts, audit, creative_rules, delivery, outbox, tenants
from adcp_agent.services import push_notifications as pushes
from adcp_agent.services.creative_archive import ARCHIVED, archive, missing
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState

log = logging.getLogger(__name__)
OPEN_BUY_STATES = ("pending_approval", "live", "paused")


@dataclass(frozen=True)
class CreativeIn:
    creative_id: str
    name: str
    format_id: str
    assets: dict[str, Any]
    tags: Sequence[str] = ()
    industry_identifiers: list[dict[str, Any]] | None = None
    provenance: dict[str, Any] | None = None

    @property
    def declared(self) -> dict[str, Any]:
        """The buyer's declarations about the creative, those given."""
        out: dict[str, Any] = {}
        if self.industry_identifiers:
            out["industry_identifiers"] = self.industry_identifiers
        if self.provenance:
            out["provenance"] = self.provenance
        return out


@dataclass(frozen=True)
class AssignmentIn:
    creative_id: str
    package_id: str
    weight: float | None = None


@dataclass
class SyncItem:
    creative_id: str
    action: str  # created | updated | unchanged | failed | deleted (archived)
    creative: Creative | None = None
    errors: list[AdcpError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    assigned_to: list[str] = field(default_factory=list)
    assignment_errors: dict[str, str] = field(default_factory=dict)


def _policy(tenant: Tenant) -> str:
    return "manual" if tenant.features.get("creative_approval") == "manual" else "auto"


async def _library(
    session: AsyncSession, caller: Caller, creative_ids: Sequence[str] | None = None
) -> dict[str, Creative]:
    """The caller's creatives by id: all of them, or just ``creative_ids``."""
    stmt = select(Creative).where(
        Creative.tenant_id == caller.tenant_id, Creative.principal_id == caller.principal_id
    )
    if creative_ids is not None:
        stmt = stmt.where(col(Creative.creative_id).in_(list(creative_ids)))
    return {c.creative_id: c for c in (await session.exec(stmt)).all()}


async def _open_packages(
    session: AsyncSession, caller: Caller, package_ids: Sequence[str]
) -> dict[str, Package]:
    """Those of ``package_ids`` that are the caller's, in buys still open."""
    rows = await session.exec(
        select(Package)
        .join(MediaBuy, MediaBuy.media_buy_id == Package.media_buy_id)
        .where(
            col(Package.package_id).in_(list(package_ids)),
            MediaBuy.tenant_id == caller.tenant_id,
            MediaBuy.principal_id == caller.principal_id,
            col(MediaBuy.state).in_(OPEN_BUY_STATES),
        )
    )
    return {p.package_id: p for p in rows.all()}


async def _assigned_pairs(
    session: AsyncSession, creatives: Sequence[Creative], package_ids: Sequence[str]
) -> set[tuple[int, str]]:
    """Which (creative pk, package id) of these are assigned already."""
    rows = await session.exec(
        select(CreativeAssignment.creative_pk, CreativeAssignment.package_id).where(
            col(CreativeAssignment.creative_pk).in_([c.id for c in creatives]),
            col(CreativeAssignment.package_id).in_(list(package_ids)),
        )
    )
    return set(rows.all())


def _changed_fields(old: Creative, new: CreativeIn) -> list[str]:
    changes = []
    if old.name != new.name:
        changes.append("name")
    if old.format_id != new.format_id:
        changes.append("format_id")
    for key in sorted(set(old.assets) | set(new.assets)):
        if old.assets.get(key) != new.assets.get(key):
            changes.append(f"assets.{key}")
    if sorted(old.tags) != sorted(new.tags):
        changes.append("tags")
    if (old.industry_identifiers or None) != (new.industry_identifiers or None):
        changes.append("industry_identifiers")
    if (old.provenance or None) != (new.provenance or None):
        changes.append("provenance")
    return changes


async def sync(
    state: AppState,
    caller: Caller,
    creatives: Sequence[CreativeIn],
    assignments: Sequence[AssignmentIn] = (),
    *,
    account_ref: dict[str, Any] | None = None,
    dry_run: bool = False,
    strict: bool = False,
    delete_missing: bool = False,
    push_config: pushes.PushNotificationConfig | None = None,
) -> list[SyncItem]:
    """Upsert creatives and their assignments. Invalid creatives fail alone and the rest
    are stored — or, ``strict``, any failure (a creative or an assignment) raises
    ``SyncRefused`` and nothing is stored. Approved creatives with assignments are
    pushed to the ad server. ``delete_missing``: the account's other creatives are
    archived (``creative_archive``). ``push_config``: the buyer hears the review
    decisions on the creatives synced."""
    principal_id = caller.require_principal()
    account = await accounts.resolve(state.db, caller, account_ref)
    items: list[SyncItem] = []
    scope = state.db.session() if dry_run else state.db.transaction()
    async with scope as session:
        tenant = await session.get(Tenant, caller.tenant_id)
        assert tenant is not None
        push_config = pushes.accept(tenant, push_config, state.secrets)
        formats = {
            f.format_id: f
            for f in (
                await session.exec(
                    select(CreativeFormat).where(CreativeFormat.tenant_id == caller.tenant_id)
                )
            ).all()
        }
        # Only the creatives this request names: a sync costs what it carries, not
        # what the library holds.
        named = {c.creative_id for c in creatives} | {a.creative_id for a in assignments}
        library = await _library(session, caller, sorted(named))
        policy = _policy(tenant)
        for i, new in enumerate(creatives):
            where = f"creatives[{i}]"
            item = SyncItem(new.creative_id, "failed")
            items.append(item)
            try:
                fmt = formats.get(new.format_id)
                if fmt is None:
                    raise AdcpError(
                        "CREATIVE_REJECTED",
                        f"Format '{new.format_id}' is not accepted by this publisher.",
                        field=f"{where}.format_id",
                        suggestion="Call list_creative_formats.",
                    )
                click, item.warnings = creative_rules.validate(fmt, new.assets, where)
            except AdcpError as exc:
                item.errors.append(exc)
                continue
            digest = creative_rules.content_hash(
                new.name, new.format_id, new.assets, list(new.tags), new.declared
            )
            old = library.get(new.creative_id)
            if old is not None and old.content_hash == digest and old.status != ARCHIVED:
                item.action, item.creative = "unchanged", old
                continue
            if old is None:
                creative = Creative(
                    tenant_id=caller.tenant_id,
                    principal_id=principal_id,
                    account_id=account.account_id,
                    creative_id=new.creative_id,
                    name=new.name,
                    format_id=new.format_id,
                    kind=fmt.kind,
                    assets=dict(new.assets),
                    click_url=click,
                    tags=list(new.tags),
                    industry_identifiers=new.industry_identifiers or None,
                    provenance=new.provenance or None,
                    status="approved" if policy == "auto" else "pending_review",
                    content_hash=digest,
                )
                item.action = "created"
            else:
                creative = old
                item.changes = _changed_fields(old, new)
                creative.name, creative.format_id, creative.kind = new.name, new.format_id, fmt.kind
                creative.assets, creative.click_url = dict(new.assets), click
                creative.tags, creative.content_hash = list(new.tags), digest
                creative.industry_identifiers = new.industry_identifiers or None
                creative.provenance = new.provenance or None
                creative.updated_at = utcnow()
                if policy == "manual":
                    creative.status, creative.rejection_reason = "pending_review", None
                elif old.status == ARCHIVED:  # synced again: back in the library
                    creative.status = "approved"
                item.action = "updated"
            item.creative = creative
            library[new.creative_id] = creative
            if not dry_run:
                session.add(creative)
                if creative.status == "approved":
                    await session.flush()
                    await _creative_event(session, creative, reason=None, decided_by="policy:auto")
                await audit.record(
                    session,
                    caller,
                    f"creative.{item.action}",
                    target_type="creative",
                    target_id=new.creative_id,
                    after={
                        "status": creative.status,
                        "format_id": new.format_id,
                        "changes": item.changes,
                    },
                )
        if not dry_run:
            await session.flush()
        wanted = sorted({a.package_id for a in assignments})
        packages = await _open_packages(session, caller, wanted) if wanted else {}
        assigned: set[tuple[int, str]] = set()
        if packages and not dry_run:
            assigned = await _assigned_pairs(session, list(library.values()), wanted)
        by_id = {it.creative_id: it for it in items}
        for j, assign in enumerate(assignments):
            item = by_id.get(assign.creative_id)
            creative = library.get(assign.creative_id)
            target = item if item is not None else None
            problem = None
            package = packages.get(assign.package_id)
            if creative is None or (item is not None and item.action == "failed"):
                problem = f"Creative '{assign.creative_id}' is not in your library."
            elif package is None:
                problem = f"Package '{assign.package_id}' was not found among your open buys."
            elif creative.format_id not in package.format_ids:
                problem = (
                    f"Package '{assign.package_id}' accepts "
                    f"{', '.join(package.format_ids)}, not {creative.format_id}."
                )
            if problem is not None:
                if target is None:
                    raise AdcpError(
                        "CREATIVE_NOT_FOUND" if creative is None else "PACKAGE_NOT_FOUND",
                        problem,
                        field=f"assignments[{j}]",
                    )
                target.assignment_errors[assign.package_id] = problem
                continue
            assert creative is not None and package is not None
            if target is not None:
                target.assigned_to.append(assign.package_id)
            if dry_run:
                continue
            if (creative.id or 0, package.package_id) not in assigned:
                assigned.add((creative.id or 0, package.package_id))
                session.add(
                    CreativeAssignment(
                        tenant_id=caller.tenant_id,
                        creative_pk=creative.id or 0,
                        package_id=package.package_id,
                        weight=assign.weight,
                    )
                )
                if creative.creative_id not in package.creative_ids:
                    package.creative_ids = [*package.creative_ids, creative.creative_id]
                    session.add(package)
        if strict and any(i.action == "failed" or i.assignment_errors for i in items):
            raise SyncRefused(items)  # the transaction rolls back: nothing is stored
        if push_config is not None and not dry_run:
            synced = [i.creative_id for i in items if i.action != "failed"]
            await pushes.save_for_creatives(session, caller, push_config, synced)
        if delete_missing:
            keep = {c.creative_id for c in creatives}
            now = state.clock.now()
            for creative, serving in await missing(session, caller, account.account_id, keep, now):
                kept = await archive(session, caller, creative, serving, dry_run=dry_run)
                action = "unchanged" if kept else "deleted"
                items.append(SyncItem(creative.creative_id, action, creative, warnings=kept))
    if not dry_run:
        await push_pending(state, caller.tenant_id, principal_id)
    return items


class SyncRefused(Exception):
    """A strict sync with a failure in it: what each creative would have come to."""

    def __init__(self, items: list[SyncItem]) -> None:
        super().__init__("strict sync refused")
        self.items = items


_A, _C = CreativeAssignment.__table__.c, Creative.__table__.c  # type: ignore[attr-defined]
_P, _B = Package.__table__.c, MediaBuy.__table__.c  # type: ignore[attr-defined]
# What a push needs of each unpushed assignment of an approved creative in an open buy,
# as plain rows (prebuilt: see media_reads); the tenant's, optionally one buyer's.
_UNPUSHED_WHERE = (
    _A.tenant_id == bindparam("tenant"),
    _A.pushed == false(),  # a literal: the index's
    _C.status == "approved",
    _B.state.in_(OPEN_BUY_STATES),
)
_UNPUSHED_COLUMNS = (
    _A.id.label("assignment_pk"),
    _C.id.label("creative_pk"),
    _C.creative_id,
    _C.name,
    _C.format_id,
    _C.kind,
    _C.assets,
    _C.click_url,
    _C.external_ids,
    _C.principal_id,
    _P.package_id,
    _P.external_line_id,
    _B.media_buy_id,
    _B.ad_server,
    _B.external_order_id,
)
_UNPUSHED_FROM = (
    CreativeAssignment.__table__.join(Creative.__table__, _C.id == _A.creative_pk)  # type: ignore[attr-defined]
    .join(Package.__table__, _P.package_id == _A.package_id)  # type: ignore[attr-defined]
    .join(MediaBuy.__table__, _B.media_buy_id == _P.media_buy_id)  # type: ignore[attr-defined]
)
_UNPUSHED = select(*_UNPUSHED_COLUMNS).select_from(_UNPUSHED_FROM).where(*_UNPUSHED_WHERE)
_UNPUSHED_OF = _UNPUSHED.where(_C.principal_id == bindparam("principal"))
_MARK_PUSHED = (
    sa_update(CreativeAssignment).where(_A.id == bindparam("assignment")).values(pushed=True)
)
_EXTERNAL_IDS = select(_C.external_ids).where(_C.id == bindparam("creative"))
_SET_EXTERNAL_IDS = (
    sa_update(Creative)
    .where(_C.id == bindparam("creative"))
    .values(external_ids=bindparam("ids", type_=_C.external_ids.type))
)


async def push_pending(state: AppState, tenant_id: str, principal_id: str | None = None) -> int:
    """Send approved-but-unpushed assignments to the ad server. Failures stay unpushed
    (and are retried on the next sync or decision); returns how many were pushed."""
    if principal_id:
        rows = await state.db.read(_UNPUSHED_OF, {"tenant": tenant_id, "principal": principal_id})
    else:
        rows = await state.db.read(_UNPUSHED, {"tenant": tenant_id})
    if not rows:
        return 0
    tenant = await tenants.tenant_row(state.db, tenant_id)
    pushed = 0
    for row in rows:
        adapter = state.adapters.get(tenant, row.ad_server)
        try:
            external = row.external_ids.get(row.ad_server)
            if external is None:
                async with state.db.reading() as session:
                    principal = await session.get(Principal, row.principal_id)
                found = creative_rules.primary_asset(row.assets, row.kind)
                asset = found[1] if found else {}
                external = await adapter.upload_creative(
                    CreativeSpec(
                        creative_id=row.creative_id,
                        name=row.name,
                        format_id=row.format_id,
                        kind=row.kind,
                        asset_url=asset.get("url"),
                        click_url=row.click_url,
                        width=asset.get("width"),
                        height=asset.get("height"),
                        duration_s=(asset["duration_ms"] / 1000)
                        if asset.get("duration_ms")
                        else None,
                        advertiser_mapping=dict(principal.platform_mappings if principal else {}),
                        snippet=asset.get("content"),
                    )
                )
            await adapter.assign_creative(
                row.external_order_id or "", row.external_line_id or "", external
            )
        except AdcpError as exc:
            log.warning("push of %s to %s failed: %s", row.creative_id, row.package_id, exc.message)
            continue
        # Hours before now ran without this creative: settle them before it can serve.
        await delivery.close_hours_of(state, row.media_buy_id)
        async with state.db.write() as tx:
            await statements.execute(tx, _MARK_PUSHED, {"assignment": row.assignment_pk}, expect=1)
            [now_held] = await statements.fetch(tx, _EXTERNAL_IDS, {"creative": row.creative_pk})
            if now_held.external_ids.get(row.ad_server) != external:
                ids = {**now_held.external_ids, row.ad_server: external}
                params = {"creative": row.creative_pk, "ids": ids}
                await statements.execute(tx, _SET_EXTERNAL_IDS, params, expect=1)
        pushed += 1
    return pushed


async def _creative_event(
    session: AsyncSession, creative: Creative, *, reason: str | None, decided_by: str
) -> None:
    """creative.approved / creative.rejected, in the transaction that decided it."""
    approved = creative.status == "approved"
    payload: dict[str, Any] = {
        "creative_id": creative.creative_id,
        "name": creative.name,
        "format_id": creative.format_id,
        "principal_id": creative.principal_id,
        "status": creative.status,
        "decided_by": decided_by,
    }
    if not approved:
        payload["reason"] = reason or "no reason given"
    await outbox.emit(
        session,
        tenant_id=creative.tenant_id,
        event_type="creative.approved" if approved else "creative.rejected",
        payload=payload,
        principal_id=creative.principal_id,
    )


async def decide(
    state: AppState,
    tenant_id: str | None,
    creative_pk: int,
    *,
    approve: bool,
    reason: str | None,
    actor: str,
) -> Creative:
    """The publisher's review decision on a creative."""
    if not approve and not (reason and reason.strip()):
        raise AdcpError("VALIDATION_ERROR", "A rejection needs a reason.", field="reason")
    async with state.db.transaction() as session:
        creative = await session.get(Creative, creative_pk)
        if creative is None or (tenant_id and creative.tenant_id != tenant_id):
            raise AdcpError(
                "CREATIVE_NOT_FOUND", f"Creative {creative_pk} was not found.", field="creative"
            )
        if creative.status not in ("pending_review", "approved", "rejected", "suspended"):
            raise AdcpError("INVALID_STATE", f"Creative is {creative.status}.", field="creative")
        before = creative.status
        creative.status = "approved" if approve else "rejected"
        creative.rejection_reason = None if approve else reason
        creative.updated_at = utcnow()
        session.add(creative)
        await _creative_event(session, creative, reason=reason, decided_by=actor)
        await audit.record(
            session,
            None,
            "creative.approve" if approve else "creative.reject",
            actor=actor,
            tenant_id=creative.tenant_id,
            target_type="creative",
            target_id=creative.creative_id,
            before={"status": before},
            after={"status": creative.status, "reason": reason},
        )
        tenant = creative.tenant_id
    if approve:
        await push_pending(state, tenant, creative.principal_id)
    return creative


async def pending_review(state: AppState, tenant_id: str | None) -> list[Creative]:
    async with state.db.reading() as session:
        stmt = select(Creative).where(Creative.status == "pending_review")
        if tenant_id:
            stmt = stmt.where(Creative.tenant_id == tenant_id)
        return list((await session.exec(stmt.order_by(Creative.created_at))).all())


async def assignable(
    state: AppState,
    caller: Caller,
    creative_ids: Sequence[str],
    format_ids: Sequence[str],
    field_name: str,
) -> list[Creative]:
    """The caller's creatives with these ids, each in one of the package's formats."""
    if not creative_ids:
        return []
    async with state.db.reading() as session:
        library = await _library(session, caller, creative_ids)
    out = []
    for cid in creative_ids:
        creative = library.get(cid)
        if creative is None:
            raise AdcpError(
                "CREATIVE_NOT_FOUND",
                f"Creative '{cid}' was not found in your creative library.",
                field=field_name,
                suggestion="Upload it with sync_creatives first.",
            )
        if creative.format_id not in format_ids:
            raise AdcpError(
                "CREATIVE_REJECTED",
                f"Creative '{cid}' is {creative.format_id}; the package accepts "
                f"{', '.join(format_ids)}.",
                field=field_name,
            )
        if creative.status in ("rejected", "archived"):
            raise AdcpError(
                "CREATIVE_REJECTED", f"Creative '{cid}' is {creative.status}.", field=field_name
            )
        out.append(creative)
    return out


_LINKS_OF_PACKAGE = select(*statements.model_columns(CreativeAssignment)).where(
    _A.package_id == bindparam("package")
)
_UNLINK = sa_delete(CreativeAssignment).where(_A.id == bindparam("link"))


async def replace_assignments(
    tx: statements.Tx,
    tenant_id: str,
    package: Package,
    creatives: Sequence[Creative],
    field_name: str,
) -> None:
    """Make the package's assignments exactly ``creatives`` (AdCP replacement semantics).
    A creative the ad server already serves cannot be withdrawn here."""
    current = await statements.fetch(tx, _LINKS_OF_PACKAGE, {"package": package.package_id})
    wanted = {c.id for c in creatives}
    for link in current:
        if link.creative_pk in wanted:
            continue
        if link.pushed:
            raise AdcpError(
                "UNSUPPORTED_FEATURE",
                "A creative that is already serving cannot be unassigned; pause the package "
                "or replace the creative's assets with sync_creatives.",
                field=field_name,
            )
        await statements.execute(tx, _UNLINK, {"link": link.id}, expect=1)
    have = {link.creative_pk for link in current}
    added = [
        statements.build(
            CreativeAssignment,
            tenant_id=tenant_id,
            creative_pk=creative.id or 0,
            package_id=package.package_id,
        )
        for creative in creatives
        if creative.id not in have
    ]
    if added:
        await statements.insert(tx, *added)
    package.creative_ids = [c.creative_id for c in creatives]


async def serving_ids(state: AppState, package_id: str) -> set[str]:
    """Creative ids the ad server already holds for a package."""
    async with state.db.reading() as session:
        rows = await session.exec(
            select(Creative.creative_id)
            .join(CreativeAssignment, CreativeAssignment.creative_pk == Creative.id)
            .where(CreativeAssignment.package_id == package_id, CreativeAssignment.pushed == True)  # noqa: E712
        )
        return set(rows.all())
