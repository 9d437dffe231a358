"""First-start setup: the demo publisher tenant, its catalog and a demo buyer."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from adcp_agent import demo_catalog
from adcp_agent.adapter_protocol import AdapterRegistry
from adcp_agent.db.engine import Database
from adcp_agent.services import catalog_admin, tenants
from adcp_agent.services.identity import hash_token

DEMO_TENANT_ID = "demo"
DEMO_PRINCIPAL_ID = "demo_buyer"


@dataclass(frozen=True)
class DemoInfo:
    tenant_id: str
    principal_id: str
    token: str | None  # None when it exists already and no fixed token was given
    created: bool


async def ensure_demo(db: Database, registry: AdapterRegistry, fixed_token: str | None) -> DemoInfo:
    """Create the demo tenant on first start; on later starts keep the data as it is,
    only re-pointing the demo token when ``fixed_token`` says so."""
    if await tenants.get_tenant(db, DEMO_TENANT_ID) is None:
        await tenants.create_tenant(
            db,
            registry,
            tenant_id=DEMO_TENANT_ID,
            name="Riverside Media (demo)",
            subdomain="demo",
            ad_server="mock",
            publisher_domains=list(demo_catalog.DOMAINS),
            actor="system",
        )
        await catalog_admin.load_catalog(
            db,
            DEMO_TENANT_ID,
            formats=demo_catalog.FORMATS,
            properties=demo_catalog.PROPERTIES,
            products=demo_catalog.PRODUCTS,
            signals=demo_catalog.SIGNALS,
            actor="system",
        )
        issued = await tenants.create_principal(
            db,
            tenant_id=DEMO_TENANT_ID,
            name="Demo Buyer Agency",
            principal_id=DEMO_PRINCIPAL_ID,
            token=fixed_token,
            actor="system",
        )
        return DemoInfo(DEMO_TENANT_ID, DEMO_PRINCIPAL_ID, issued.token, True)

    principal = await tenants.get_principal(db, DEMO_TENANT_ID, DEMO_PRINCIPAL_ID)
    if fixed_token is None or principal is None:
        return DemoInfo(DEMO_TENANT_ID, DEMO_PRINCIPAL_ID, None, False)
    if not hmac.compare_digest(principal.token_hash, hash_token(fixed_token)):
        await tenants.set_principal_token(
            db,
            tenant_id=DEMO_TENANT_ID,
            principal_id=DEMO_PRINCIPAL_ID,
            token=fixed_token,
            actor="system",
        )
    return DemoInfo(DEMO_TENANT_ID, DEMO_PRINCIPAL_ID, fixed_token, False)
