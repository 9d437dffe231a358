"""Which adapter serves a media buy, with one live instance per tenant configuration.

Sandbox accounts and sandbox tenants always get the mock engine, whatever the tenant's
``ad_server`` says: test traffic never reaches a real ad server.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from adcp_agent.adapter_protocol import AdapterRegistry, AdServerAdapter
from adcp_agent.db.models import Tenant

MOCK = "mock"


class AdapterPool:
    def __init__(self, registry: AdapterRegistry, data_dir: Path | None = None) -> None:
        self.registry = registry
        self.data_dir = data_dir
        self._live: dict[str, AdServerAdapter] = {}

    def choose(self, tenant: Tenant, *, sandbox: bool) -> str:
        if sandbox or tenant.features.get("sandbox"):
            return MOCK
        return tenant.ad_server

    def get(self, tenant: Tenant, name: str) -> AdServerAdapter:
        config = tenant.adapter_config if name == tenant.ad_server else {}
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
        key = f"{tenant.tenant_id}:{name}:{digest}"
        adapter = self._live.get(key)
        if adapter is None:
            state_file = None
            if self.data_dir is not None:
                state_file = self.data_dir / "adapters" / f"{tenant.tenant_id}-{name}.state"
            adapter = self.registry.create(name, config, state_file=state_file)
            self._live[key] = adapter
        return adapter
