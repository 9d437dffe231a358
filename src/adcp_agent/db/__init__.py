"""Persistence: SQLModel tables and the async engine."""

from __future__ import annotations

import importlib
import pkgutil


def load_all_models() -> None:
    """Import every ``adcp_agent.db.models*`` module so all tables are on the metadata
    (features keep their tables in their own module, e.g. ``models_chat``)."""
    package = importlib.import_module("adcp_agent.db")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("models"):
            importlib.import_module(f"adcp_agent.db.{info.name}")
