"""Buyer's-eye simulations: complete AdCP buying journeys driven over real MCP streamable
HTTP (and the publisher's admin REST API) against a server on a simulated clock. They use
only the public surfaces, exactly as an outside buying agent would."""
