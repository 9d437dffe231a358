"""Google Ad Manager adapter (SOAP API through googleads). See ``adapter.py``."""

from adcp_agent_adapters.gam.adapter import GoogleAdManagerAdapter
from adcp_agent_adapters.gam.config import GamConfig
from adcp_agent_adapters.gam.session import GamSession

__all__ = ["GamConfig", "GamSession", "GoogleAdManagerAdapter"]
