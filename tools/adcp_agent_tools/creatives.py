"""Creative tools: the AdCP library calls and the seed-003 upload/status aliases."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from pydantic import Field

from adcp_agent.db.models_creatives import Creative, CreativeAssignment
from adcp_agent.errors import AdcpError
from adcp_agent.services import creative_listing, media_reads
from adcp_agent.services import creatives as library
from adcp_agent.services.creative_listing import CreativeQuery
from adcp_agent.services.push_notifications import PushNotificationConfig
from adcp_agent.state import AppState
from adcp_agent_tools.caller import current_caller
from adcp_agent_tools.discovery import READ_ONLY
from adcp_agent_tools.media_wire import iso
from adcp_agent_tools.params import AccountRef, FormatRef, IdempotencyKey, Pagination, _Open, dump
from adcp_agent_tools.results import (
    AdcpErrors,
    adcp_errors_as_results,
    fingerprint,
    ok,
    page_info,
    page_window,
    projected,
)
from adcp_agent_tools.times import filter_time

MUTATES = {"readOnlyHint": False, "idempotentHint": True, "openWorldHint": True}
_KIND_ASSET = {"display": "image", "video": "video", "audio": "audio"}


class IndustryIdentifier(_Open):
    type: Literal["ad_id", "isci", "clearcast_clock", "idcrea"]
    value: str = Field(min_length=1, max_length=100)


class CreativeAsset(_Open):
    creative_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=300)
    format_id: FormatRef
    assets: dict[str, Any]
    tags: list[str] | None = None
    industry_identifiers: list[IndustryIdentifier] | None = Field(default=None, max_length=20)
    provenance: dict[str, Any] | None = Field(
        default=None,
        description="How the creative was made (AI tool, human oversight, disclosure, C2PA): "
        "kept for the publisher's review and returned by list_creatives.",
    )


def creative_in(c: CreativeAsset) -> library.CreativeIn:
    """A creative as sent (sync_creatives, or inline with a package) for the library."""
    return library.CreativeIn(
        c.creative_id,
        c.name,
        c.format_id.id,
        c.assets,
        c.tags or [],
        [i.model_dump(exclude_none=True) for i in c.industry_identifiers or []],
        c.provenance,
    )


class Assignment(_Open):
    creative_id: str
    package_id: str
    weight: float | None = Field(default=None, ge=0, le=100)


class CreativeFilters(_Open):
    statuses: list[str] | None = Field(default=None, max_length=20)
    creative_ids: list[str] | None = Field(default=None, max_length=100)
    media_buy_ids: list[str] | None = Field(default=None, max_length=1000)
    assigned_to_packages: list[str] | None = Field(default=None, max_length=1000)
    unassigned: bool | None = None
    name_contains: str | None = None
    tags: list[str] | None = Field(default=None, max_length=100)
    tags_any: list[str] | None = Field(default=None, max_length=100)
    format_ids: list[FormatRef] | None = Field(default=None, max_length=100)
    accounts: list[AccountRef] | None = Field(default=None, min_length=1, max_length=100)
    created_after: str | None = None
    created_before: str | None = None
    updated_after: str | None = None
    updated_before: str | None = None


class CreativeSort(_Open):
    field: Literal["created_date", "updated_date", "name", "status", "assignment_count"] = (
        "created_date"
    )
    direction: Literal["asc", "desc"] = "desc"


def _creative_query(f: CreativeFilters, sort: CreativeSort) -> CreativeQuery:
    return CreativeQuery(
        statuses=f.statuses or [],
        creative_ids=f.creative_ids or [],
        media_buy_ids=f.media_buy_ids or [],
        package_ids=f.assigned_to_packages or [],
        unassigned=f.unassigned,
        name_contains=f.name_contains,
        tags=f.tags or [],
        tags_any=f.tags_any or [],
        format_ids=[x.id for x in f.format_ids or []],
        account_refs=[dump(a) or {} for a in f.accounts or []],
        created_after=filter_time(f, "created_after"),
        created_before=filter_time(f, "created_before"),
        updated_after=filter_time(f, "updated_after"),
        updated_before=filter_time(f, "updated_before"),
        sort=sort.field,
        descending=sort.direction == "desc",
    )


# list_creatives' ``fields`` values (AdCP 3.1), and what a projection always keeps
CreativeField = Literal[
    "creative_id", "name", "format_id", "status", "created_date", "updated_date", "tags",
    "assignments", "snapshot", "items", "variables", "concept", "pricing_options",
]  # fmt: skip
_ALWAYS = ("creative_id", "name", "status", "created_date", "updated_date", "rejection_reason")
_WITH = {"concept": ("concept_id", "concept_name"), "snapshot": ("snapshot_unavailable_reason",)}


def creative_wire(
    c: Creative,
    links: list[CreativeAssignment],
    agent_url: str,
    *,
    assignments: bool = True,
    snapshot: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "creative_id": c.creative_id,
        "name": c.name,
        "format_id": {"agent_url": agent_url, "id": c.format_id},
        "status": c.status,
        "created_date": iso(c.created_at),
        "updated_date": iso(c.updated_at),
        "assets": c.assets,
    }
    if assignments:
        out["assignments"] = {
            "assignment_count": len(links),
            "assigned_packages": [
                {"package_id": a.package_id, "assigned_date": iso(a.assigned_at)} for a in links
            ],
        }
    if snapshot:
        # Delivery is recorded per package (a package rotates its creatives), not per
        # creative: AdCP's way of saying this platform has no creative snapshot.
        out["snapshot_unavailable_reason"] = "SNAPSHOT_UNSUPPORTED"
    if c.tags:
        out["tags"] = c.tags
    if c.industry_identifiers:
        out["industry_identifiers"] = c.industry_identifiers
    if c.provenance:
        out["provenance"] = c.provenance
    if c.rejection_reason:
        out["rejection_reason"] = c.rejection_reason
    return out


def _strict_failures(
    items: list[library.SyncItem], assignments: list[library.AssignmentIn]
) -> list[AdcpError]:
    """Why a strict sync stored nothing: each creative's errors (fields as the lenient
    answer names them) and each assignment that could not be made."""
    errors = [e for item in items for e in item.errors]
    for item in items:
        if item.action == "failed":
            continue  # its assignments failed because it did: said once, above
        for package_id, problem in item.assignment_errors.items():
            index = next(
                j
                for j, a in enumerate(assignments)
                if (a.creative_id, a.package_id) == (item.creative_id, package_id)
            )
            errors.append(AdcpError("VALIDATION_ERROR", problem, field=f"assignments[{index}]"))
    return errors


def register(mcp: FastMCP, state: AppState) -> None:
    def item_wire(item: library.SyncItem, dry_run: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"creative_id": item.creative_id, "action": item.action}
        if item.action == "failed":
            out["errors"] = [e.to_adcp() for e in item.errors]
        elif not dry_run and item.creative is not None and item.action != "deleted":
            out["status"] = item.creative.status  # (AdCP: a deleted one has none)
        if item.changes:
            out["changes"] = item.changes
        if item.warnings:
            out["warnings"] = item.warnings
        if item.assigned_to or item.assignment_errors:
            out["assigned_to"] = item.assigned_to
        if item.assignment_errors:
            out["assignment_errors"] = item.assignment_errors
        return out

    async def run_sync(  # type: ignore[no-untyped-def]
        creatives, assignments, account, dry_run, strict=False, delete_missing=False, push=None
    ):
        caller = current_caller()
        try:
            items = await library.sync(
                state,
                caller,
                creatives,
                assignments,
                account_ref=dump(account),
                dry_run=dry_run,
                strict=strict,
                delete_missing=delete_missing,
                push_config=push,
            )
        except library.SyncRefused as refused:
            raise AdcpErrors(_strict_failures(refused.items, assignments)) from None
        counts = Counter(i.action for i in items)
        message = (
            ("Dry run, nothing written: " if dry_run else "")
            + ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
            + "."
        )
        return items, message

    @mcp.tool(name="sync_creatives", annotations=MUTATES, output_schema=None)
    @adcp_errors_as_results
    async def sync_creatives(
        creatives: Annotated[list[CreativeAsset], Field(min_length=1, max_length=100)],
        assignments: Annotated[list[Assignment] | None, Field(max_length=1000)] = None,
        dry_run: bool = False,
        validation_mode: Annotated[
            Literal["strict", "lenient"],
            Field(
                description="strict (AdCP's default): any invalid creative or assignment "
                "fails the whole sync and nothing is stored; lenient: each fails alone."
            ),
        ] = "strict",
        account: AccountRef | None = None,
        idempotency_key: IdempotencyKey = None,
        creative_ids: Annotated[
            list[str] | None,
            Field(
                min_length=1,
                max_length=100,
                description="Only these of the creatives sent are created or updated.",
            ),
        ] = None,
        delete_missing: Annotated[
            bool,
            Field(
                description="Archive the account's creatives this sync leaves out (a full "
                "library replacement); one still serving in a running buy is kept, with a "
                "warning. Not with creative_ids."
            ),
        ] = False,
        push_notification_config: Annotated[
            PushNotificationConfig | None,
            Field(
                description="Webhook for the publisher's review decisions on the creatives "
                "synced (approved / rejected): {url, token?, authentication?}."
            ),
        ] = None,
    ) -> ToolResult:
        """Upload or update creatives (upsert by your creative_id) and assign them to
        packages. Each creative declares its format_id and its assets keyed by asset id,
        e.g. {banner_image: {asset_type: 'image', url, width: 300, height: 250},
        clickthrough_url: {asset_type: 'url', url_type: 'clickthrough', url}}. Each comes
        back created / updated / unchanged; status tells whether the publisher approved
        it. Only approved creatives deliver. validation_mode 'strict' (the default): any
        invalid creative or assignment fails the whole call with every error, naming its
        field, and nothing is stored; 'lenient': each invalid one fails alone."""
        if delete_missing and creative_ids:
            raise AdcpError(
                "INVALID_REQUEST",
                "delete_missing replaces the whole library; it does not go with creative_ids.",
                field="delete_missing",
            )
        scope = set(creative_ids or [c.creative_id for c in creatives])
        items, message = await run_sync(
            [creative_in(c) for c in creatives if c.creative_id in scope],
            [
                library.AssignmentIn(a.creative_id, a.package_id, a.weight)
                for a in assignments or []
            ],
            account,
            dry_run,
            strict=validation_mode == "strict",
            delete_missing=delete_missing,
            push=push_notification_config,
        )
        payload: dict[str, Any] = {
            "message": message,
            "creatives": [item_wire(i, dry_run) for i in items],
        }
        if dry_run:
            payload["dry_run"] = True
        return ok(payload)

    @mcp.tool(name="list_creatives", annotations=READ_ONLY, output_schema=None)
    @adcp_errors_as_results
    async def list_creatives(
        filters: CreativeFilters | None = None,
        sort: CreativeSort | None = None,
        pagination: Pagination | None = None,
        account: AccountRef | None = None,
        include_assignments: Annotated[
            bool, Field(description="Each creative's package assignments.")
        ] = True,
        include_snapshot: Annotated[
            bool,
            Field(
                description="Delivery per creative: not reported here (delivery is per "
                "package: get_media_buys include_snapshot, get_media_buy_delivery)."
            ),
        ] = False,
        fields: Annotated[
            list[CreativeField] | None,
            Field(min_length=1, description="Only these fields (identity and status always)."),
        ] = None,
    ) -> ToolResult:
        """Your creative library with approval status and package assignments, newest
        first unless sorted otherwise (created_date, updated_date, name, status,
        assignment_count); filter by statuses, creative_ids, formats, media_buy_ids,
        assigned_to_packages, unassigned, name_contains, tags (all) / tags_any,
        accounts, and created/updated time ranges."""
        caller = current_caller()
        f = filters or CreativeFilters()
        order = sort or CreativeSort()
        query = fingerprint(
            "creatives", caller.tenant_id, caller.principal_id, dump(f), dump(order)
        )
        offset, limit = page_window(dump(pagination), query)
        wanted = replace(_creative_query(f, order), account_ref=dump(account))
        listing = await creative_listing.list_creatives(
            state, caller, wanted, offset=offset, limit=limit
        )
        return ok(
            {
                "query_summary": {
                    "total_matching": listing.total,
                    "returned": len(listing.rows),
                    "filters_applied": [k for k, v in (dump(f) or {}).items() if v is not None],
                },
                "pagination": page_info(offset, limit, listing.total, query),
                "creatives": projected(
                    [
                        creative_wire(
                            c,
                            links,
                            state.agent_url,
                            assignments=include_assignments,
                            snapshot=include_snapshot,
                        )
                        for c, links in listing.rows
                    ],
                    fields and [*fields, *(x for f in fields for x in _WITH.get(f, ()))],
                    _ALWAYS,
                ),
            }
        )

    @mcp.tool(name="upload_creative", annotations=MUTATES, output_schema=None)
    @adcp_errors_as_results
    async def upload_creative(
        media_buy_id: str,
        creative_url: Annotated[str, Field(description="URL of the image, video or audio.")],
        format: Annotated[str, Field(description="Format id, e.g. 'display_300x250'.")],
        metadata: Annotated[
            dict[str, Any] | None,
            Field(description="name, click_url, width, height, duration_ms, creative_id."),
        ] = None,
    ) -> ToolResult:
        """Seed-003 alias of sync_creatives: upload one creative by URL and assign it to
        every package of the media buy that accepts the format."""
        caller = current_caller()
        meta = metadata or {}
        views, missing = await media_reads.list_buys(state, caller, media_buy_ids=[media_buy_id])
        if missing:
            raise AdcpError(
                "MEDIA_BUY_NOT_FOUND",
                f"Media buy '{media_buy_id}' was not found.",
                field="media_buy_id",
            )
        kind = next((k for k, a in _KIND_ASSET.items() if format.startswith(k)), "display")
        asset: dict[str, Any] = {"asset_type": _KIND_ASSET[kind], "url": creative_url}
        for key in ("width", "height", "duration_ms", "file_size_bytes"):
            if key in meta:
                asset[key] = meta[key]
        assets: dict[str, Any] = {f"{_KIND_ASSET[kind]}_file": asset}
        if meta.get("click_url"):
            assets["clickthrough_url"] = {
                "asset_type": "url",
                "url_type": "clickthrough",
                "url": meta["click_url"],
            }
        creative_id = str(
            meta.get("creative_id")
            or "cr_"
            + hashlib.sha256(f"{media_buy_id}|{creative_url}|{format}".encode()).hexdigest()[:12]
        )
        packages = [p.package_id for p in views[0].packages if format in p.format_ids]
        items, message = await run_sync(
            [library.CreativeIn(creative_id, str(meta.get("name") or creative_id), format, assets)],
            [library.AssignmentIn(creative_id, p) for p in packages],
            None,
            False,
        )
        item = items[0]
        if item.action == "failed":
            raise item.errors[0]
        return ok(
            {
                "creative_id": creative_id,
                "media_buy_id": media_buy_id,
                "action": item.action,
                "creative_status": item.creative.status if item.creative else None,
                "assigned_to": item.assigned_to,
                "message": message,
            }
        )

    @mcp.tool(name="get_creative_status", annotations=READ_ONLY, output_schema=None)
    @adcp_errors_as_results
    async def get_creative_status(media_buy_id: str, creative_id: str | None = None) -> ToolResult:
        """Seed-003: approval status of the creatives assigned to a media buy."""
        caller = current_caller()
        _, missing = await media_reads.list_buys(state, caller, media_buy_ids=[media_buy_id])
        if missing:
            raise AdcpError(
                "MEDIA_BUY_NOT_FOUND",
                f"Media buy '{media_buy_id}' was not found.",
                field="media_buy_id",
            )
        wanted = CreativeQuery(
            media_buy_ids=[media_buy_id], creative_ids=[creative_id] if creative_id else []
        )
        rows = (await creative_listing.list_creatives(state, caller, wanted)).rows
        if creative_id and not rows:
            raise AdcpError(
                "CREATIVE_NOT_FOUND",
                f"Creative '{creative_id}' is not assigned to this media buy.",
                field="creative_id",
            )
        return ok(
            {
                "media_buy_id": media_buy_id,
                "creatives": [
                    {
                        "creative_id": c.creative_id,
                        "name": c.name,
                        "format": c.format_id,
                        "creative_status": c.status,
                        "rejection_reason": c.rejection_reason,
                        "delivering": any(link.pushed for link in links),
                    }
                    for c, links in rows
                ],
            }
        )
