"""adcp-agent: an AdCP 3.1 sales agent served over MCP streamable HTTP."""

__version__ = "0.1.0"
ADCP_VERSION = "3.1"
