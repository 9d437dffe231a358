"""Persistence: SQLModel tables and the async engine."""
