"""What a running server holds: settings, the database and the adapter registry.
Built once at start-up and handed to the tool layer and REST routes explicitly."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from adcp_agent.adapter_protocol import AdapterRegistry
from adcp_agent.config import Settings
from adcp_agent.db.engine import Database, create_database
from adcp_agent.services.adapters import AdapterPool


@dataclass
class AppState:
    settings: Settings
    db: Database
    registry: AdapterRegistry = field(default_factory=AdapterRegistry)
    adapters: AdapterPool = field(init=False)
    started_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.adapters = AdapterPool(self.registry, self.settings.data_dir)

    @classmethod
    def from_settings(cls, settings: Settings) -> AppState:
        return cls(settings=settings, db=create_database(settings.resolved_database_url()))

    @property
    def agent_url(self) -> str:
        """This agent's MCP URL: the ``agent_url`` of our formats and signal deployments."""
        return self.settings.base_url() + "/mcp"

    @property
    def default_tenant(self) -> str | None:
        return self.settings.default_tenant or ("demo" if self.settings.seed_demo else None)
