"""Kevel ad-server adapter (entry point ``kevel``)."""

from adcp_agent_adapters.kevel.adapter import KevelAdapter
from adcp_agent_adapters.kevel.config import KevelConfig

__all__ = ["KevelAdapter", "KevelConfig"]
