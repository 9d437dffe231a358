"""REST surface (health, and later tenant management and chat)."""
