"""Which adapter serves a media buy, with one live instance per tenant configuration.

Sandbox accounts and sandbox tenants always get the mock engine, whatever the tenant's
``ad_server`` says: test traffic never reaches a real ad server. A sandbox account can
also have its upstream forced unavailable (``comply_test_controller``'s
``force_upstream_unavailable``): its adapter calls then fail as a real outage would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from adcp_agent.adapter_protocol import AdapterRegistry, AdServerAdapter
from adcp_agent.db.models import Tenant
from adcp_agent.errors import AdcpError
from adcp_agent.sealing import SecretBox, open_all

MOCK = "mock"
ANY_TOOL = "*"
# Buyer operations whose ad-server calls can be forced unavailable (the others never
# wait on the ad server: discovery reads our catalog, creative pushes are retried later).
FAULTABLE_TOOLS = ("create_media_buy", "update_media_buy")


@dataclass
class UpstreamFaults:
    """Upstreams forced unavailable, per (tenant, sandbox account): tool -> upstream name.
    In memory on purpose: a sandbox outage lasts until reset or restart, never longer."""

    _down: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def set(self, tenant_id: str, account_id: str, tool: str, upstream: str) -> None:
        self._down.setdefault((tenant_id, account_id), {})[tool] = upstream

    def clear(self, tenant_id: str, account_id: str, tool: str) -> None:
        down = self._down.get((tenant_id, account_id), {})
        down.pop(tool, None)
        if not down:
            self._down.pop((tenant_id, account_id), None)

    def down(self, tenant_id: str, account_id: str, tool: str) -> str | None:
        """The unavailable upstream for this tool (or every tool), else None."""
        down = self._down.get((tenant_id, account_id), {})
        return down.get(tool) or down.get(ANY_TOOL)

    def registered(self, tenant_id: str, account_id: str, tool: str) -> str | None:
        """The upstream registered for exactly this tool key (``*`` included)."""
        return self._down.get((tenant_id, account_id), {}).get(tool)


class _Unavailable:
    """Stands in for an adapter whose upstream is down: every call fails transiently."""

    def __init__(self, inner: AdServerAdapter, upstream: str, tool: str) -> None:
        self._inner = inner
        self._upstream = upstream
        self._tool = tool

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value):
            return value
        return self._refuse(name)

    def _refuse(self, operation: str) -> Callable[..., Any]:
        async def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise AdcpError(
                "SERVICE_UNAVAILABLE",
                f"Upstream '{self._upstream}' is unavailable (forced by comply_test_controller).",
                recovery="transient",
                details={
                    "upstream": {"name": self._upstream},
                    "tool": self._tool,
                    "operation": operation,
                },
            )

        return refuse


class AdapterPool:
    def __init__(
        self,
        registry: AdapterRegistry,
        data_dir: Path | None = None,
        faults: UpstreamFaults | None = None,
        box: SecretBox | None = None,
    ) -> None:
        """``box`` opens the tenant secrets sealed in an ``adapter_config``."""
        self.registry = registry
        self.data_dir = data_dir
        self.box = box
        self.faults = faults if faults is not None else UpstreamFaults()
        self._live: dict[str, AdServerAdapter] = {}

    def choose(self, tenant: Tenant, *, sandbox: bool) -> str:
        if sandbox or tenant.features.get("sandbox"):
            return MOCK
        return tenant.ad_server

    def get(
        self,
        tenant: Tenant,
        name: str,
        *,
        account_id: str | None = None,
        tool: str | None = None,
    ) -> AdServerAdapter:
        """The live adapter; a failing stand-in when ``tool`` runs for an account whose
        upstream the test controller forced down."""
        adapter = self._adapter(tenant, name)
        if account_id is not None and tool is not None:
            upstream = self.faults.down(tenant.tenant_id, account_id, tool)
            if upstream is not None:
                return cast(AdServerAdapter, _Unavailable(adapter, upstream, tool))
        return adapter

    def _adapter(self, tenant: Tenant, name: str) -> AdServerAdapter:
        config = tenant.adapter_config if name == tenant.ad_server else {}
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
        key = f"{tenant.tenant_id}:{name}:{digest}"
        adapter = self._live.get(key)
        if adapter is None:
            state_file = None
            if self.data_dir is not None:
                state_file = self.data_dir / "adapters" / f"{tenant.tenant_id}-{name}.state"
            opened = open_all(config, self.box) if self.box is not None else config
            adapter = self.registry.create(name, opened, state_file=state_file)
            self._live[key] = adapter
        return adapter
