"""Reading the audit trail: filtered, newest first, cursor-paginated."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import field_validator
from sqlalchemy import and_, or_
from sqlmodel import col, select

from adcp_agent.db.engine import Database
from adcp_agent.db.models import AuditLog
from adcp_agent.services import paging
from adcp_agent.services.paging import Page, PageRequest


class AuditQuery(PageRequest):
    """``since`` is inclusive, ``until`` exclusive; a datetime without an offset is UTC."""

    tenant_id: str | None = None
    principal_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def list_audit_logs(db: Database, query: AuditQuery) -> Page[AuditLog]:
    stmt = select(AuditLog)
    if query.tenant_id is not None:
        stmt = stmt.where(AuditLog.tenant_id == query.tenant_id)
    if query.principal_id is not None:
        # What the principal did, and what admins did to it.
        stmt = stmt.where(
            or_(
                col(AuditLog.principal_id) == query.principal_id,
                and_(
                    col(AuditLog.target_type) == "principal",
                    col(AuditLog.target_id) == query.principal_id,
                ),
            )
        )
    if query.action is not None:
        stmt = stmt.where(AuditLog.action == query.action)
    if query.since is not None:
        stmt = stmt.where(col(AuditLog.created_at) >= query.since)
    if query.until is not None:
        stmt = stmt.where(col(AuditLog.created_at) < query.until)
    if query.cursor:
        position = paging.decode_cursor("audit_logs", query.cursor, int)
        stmt = stmt.where(paging.after(AuditLog.created_at, AuditLog.id, position, descending=True))
    stmt = stmt.order_by(col(AuditLog.created_at).desc(), col(AuditLog.id).desc()).limit(
        query.limit + 1
    )
    async with db.reading() as session:
        rows = list((await session.exec(stmt)).all())
    return paging.build_page(rows, query.limit, "audit_logs", lambda r: (r.created_at, r.id or 0))
