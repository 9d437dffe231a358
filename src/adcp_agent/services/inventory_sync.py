"""Mirror a tenant's ad-server inventory (ad units, zones, stations...) into
``inventory_items`` so products can be mapped to placements without calling the ad
server on every request."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from adcp_agent.adapter_protocol import AdapterRegistry, InventoryItem
from adcp_agent.db.engine import Database
from adcp_agent.db.models_admin import SyncedInventoryItem
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.sealing import SecretBox, open_all
from adcp_agent.services import audit
from adcp_agent.services.tenant_admin import ACTOR, require_tenant

log = logging.getLogger("adcp_agent.inventory")


@dataclass(frozen=True)
class SyncReport:
    tenant_id: str
    ad_server: str
    synced_at: datetime
    total: int
    created: int
    updated: int
    by_kind: dict[str, int] = field(default_factory=dict)


async def sync_inventory(
    db: Database, registry: AdapterRegistry, box: SecretBox, tenant_id: str
) -> SyncReport:
    """Upsert what the ad server reports. Items it no longer reports are kept; their
    ``synced_at`` says when they were last seen."""
    tenant = await require_tenant(db, tenant_id)
    adapter = registry.create(tenant.ad_server, open_all(tenant.adapter_config, box))
    try:
        reported = await adapter.sync_inventory()
    except AdcpError as exc:
        await _record_failure(db, tenant_id, tenant.ad_server, exc.code)
        raise
    except Exception as exc:  # noqa: BLE001 - any adapter fault becomes a typed, logged error
        log.exception("inventory sync failed for tenant %s (%s)", tenant_id, tenant.ad_server)
        await _record_failure(db, tenant_id, tenant.ad_server, type(exc).__name__)
        raise AdcpError(
            "SERVICE_UNAVAILABLE",
            f"The {tenant.ad_server} ad server did not return its inventory.",
            recovery="transient",
            suggestion="Retry later; the server log has the ad server's error.",
            details={"ad_server": tenant.ad_server},
        ) from None

    # The last report of an id wins, as the ad server's own listing would.
    items: dict[str, InventoryItem] = {item.item_id: item for item in reported}
    now = utcnow()
    created = updated = 0
    try:
        async with db.transaction() as session:
            existing = {
                row.item_id: row
                for row in (
                    await session.exec(
                        select(SyncedInventoryItem).where(
                            SyncedInventoryItem.tenant_id == tenant_id
                        )
                    )
                ).all()
            }
            for item in items.values():
                row = existing.get(item.item_id)
                if row is None:
                    row = SyncedInventoryItem(
                        tenant_id=tenant_id, item_id=item.item_id, name="", kind=""
                    )
                    created += 1
                else:
                    updated += 1
                row.name, row.kind, row.parent_id = item.name, item.kind, item.parent_id
                row.synced_at = now
                session.add(row)
            by_kind = dict(sorted(Counter(item.kind for item in items.values()).items()))
            await audit.record(
                session,
                None,
                "tenant.sync_inventory",
                actor=ACTOR,
                tenant_id=tenant_id,
                target_type="tenant",
                target_id=tenant_id,
                details={"created": created, "updated": updated, "by_kind": by_kind},
            )
    except IntegrityError:  # another sync of this tenant inserted the same items first
        raise AdcpError(
            "CONFLICT",
            "Another inventory sync for this tenant finished first.",
            recovery="transient",
            suggestion="Retry; the next sync updates what the other one stored.",
        ) from None
    return SyncReport(
        tenant_id=tenant_id,
        ad_server=tenant.ad_server,
        synced_at=now,
        total=len(items),
        created=created,
        updated=updated,
        by_kind=by_kind,
    )


async def _record_failure(db: Database, tenant_id: str, ad_server: str, reason: str) -> None:
    async with db.transaction() as session:
        await audit.record(
            session,
            None,
            "tenant.sync_inventory",
            actor=ACTOR,
            tenant_id=tenant_id,
            target_type="tenant",
            target_id=tenant_id,
            success=False,
            details={"ad_server": ad_server, "reason": reason},
        )
