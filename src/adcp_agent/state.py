"""What a running server holds: settings, the database and the adapter registry.
Built once at start-up and handed to the tool layer and REST routes explicitly."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field

from adcp_agent.adapter_protocol import AdapterRegistry
from adcp_agent.clock import Clock, RealClock, build_clock
from adcp_agent.config import Settings
from adcp_agent.db.engine import Database, create_database
from adcp_agent.db.group_commit import GroupCommit
from adcp_agent.sealing import SecretBox
from adcp_agent.services.adapters import AdapterPool, UpstreamFaults


@dataclass
class AppState:
    settings: Settings
    db: Database
    registry: AdapterRegistry = field(default_factory=AdapterRegistry)
    clock: Clock = field(default_factory=RealClock)  # "now" for delivery and lifecycle
    started_at: float = field(default_factory=time.monotonic)
    # Sandbox upstreams forced down by comply_test_controller (scoped per tenant/account).
    upstream_faults: UpstreamFaults = field(default_factory=UpstreamFaults)
    # Trusted CAs for calls to buyers' agents (governance); tests add their own CA.
    governance_tls: ssl.SSLContext | None = None
    _pool: AdapterPool | None = field(default=None, init=False, repr=False)
    _secrets: SecretBox | None = field(default=None, init=False, repr=False)
    _group_commit: GroupCommit | None = field(default=None, init=False, repr=False)

    @property
    def adapters(self) -> AdapterPool:
        """Live adapters, built from the current registry (tests swap the registry)."""
        if self._pool is None or self._pool.registry is not self.registry:
            self._pool = AdapterPool(
                self.registry,
                self.settings.data_dir,
                faults=self.upstream_faults,
                box=self.secrets,
            )
        return self._pool

    @property
    def secrets(self) -> SecretBox:
        """Seals and opens the secrets stored for later use (``adcp_agent.sealing``)."""
        if self._secrets is None:
            self._secrets = SecretBox.from_settings(self.settings)
        return self._secrets

    def outbound_tls(self) -> ssl.SSLContext:
        """The TLS context for calls to buyers' agents."""
        from adcp_agent.tls import client_tls

        return self.governance_tls or client_tls(trust_env=False)

    @property
    def group_commit(self) -> GroupCommit:
        """Shared transactions for small, frequent writes (tracking events); one per
        database and event loop."""
        gc = self._group_commit
        if gc is None or gc.db is not self.db or gc.loop is not asyncio.get_running_loop():
            gc = self._group_commit = GroupCommit(self.db)
        return gc

    @classmethod
    def from_settings(cls, settings: Settings) -> AppState:
        return cls(
            settings=settings,
            db=create_database(settings.resolved_database_url()),
            clock=build_clock(settings),
        )

    @property
    def agent_url(self) -> str:
        """This agent's MCP URL: the ``agent_url`` of our formats and signal deployments."""
        return self.settings.base_url() + "/mcp"

    @property
    def default_tenant(self) -> str | None:
        return self.settings.default_tenant or ("demo" if self.settings.seed_demo else None)
