"""Audit trail: every mutation writes a row in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from adcp_agent.db import statements
from adcp_agent.db.models import AuditLog
from adcp_agent.db.statements import Tx
from adcp_agent.services.identity import Caller


async def record(
    session: Tx,
    caller: Caller | None,
    action: str,
    *,
    target_type: str = "",
    target_id: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    success: bool = True,
    actor: str | None = None,
    tenant_id: str | None = None,
    revision: int | None = None,
) -> AuditLog:
    row = statements.build(
        AuditLog,
        tenant_id=tenant_id or (caller.tenant_id if caller else None),
        principal_id=caller.principal_id if caller else None,
        actor=actor or (caller.actor if caller else "system"),
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
        details=details or {},
        success=success,
        revision=revision,
    )
    await statements.insert(session, row)
    return row
