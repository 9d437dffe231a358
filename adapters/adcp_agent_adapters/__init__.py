"""Ad-server adapters, each registered under the ``adcp_agent.adapters`` entry point."""
