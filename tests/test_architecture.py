"""House rules enforced by the test run: layering (import-linter) and lint (ruff)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from logging import Logger
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_layering_contracts_hold() -> None:
    from importlinter.cli import lint_imports

    # import-linter configures logging with dictConfig, which disables every logger
    # that exists by then: without this, no later test in the session saw a log record.
    loggers = [x for x in logging.root.manager.loggerDict.values() if isinstance(x, Logger)]
    disabled = {logger: logger.disabled for logger in loggers}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        code = lint_imports(no_cache=True, no_logo=True)
    finally:
        os.chdir(cwd)
        for logger, was in disabled.items():
            logger.disabled = was
    assert code == 0, "import-linter contracts are broken (see output above)"


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is a dev dependency"
    result = subprocess.run(
        [ruff, "check", "src", "tools", "adapters", "tests", "simulations"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_adapters_load_through_entry_points() -> None:
    from adcp_agent.adapter_protocol import AdapterRegistry, AdServerAdapter

    registry = AdapterRegistry()
    assert "mock" in registry.names()
    adapter = registry.create("mock", {})
    assert isinstance(adapter, AdServerAdapter)
