"""The benchmark harness works end to end (with numbers too small to mean anything):
it starts the floor and two servers, bulk-loads buys through the real tables, drives
every operation over streamable HTTP without an error and reports each target. It
never asserts a timing; benchmarks/RESULTS.md holds the measurements."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _harness() -> ModuleType:
    """benchmarks/run.py, loaded as the script it is (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_harness_measures_every_operation_against_the_floor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.json"
    argv = ["--clients", "2", "--seconds", "0.2", "--rounds", "1", "--warmup", "0.05",
            "--buys", "50", "--json", str(out)]  # fmt: skip
    assert _harness().main(argv) == 0
    report = capsys.readouterr().out
    results = json.loads(out.read_text())

    assert set(results["floor"]["ops"]) == {"tools/list", "noop"}
    agent_ops = set(results["agent"]["ops"])
    assert {"tools/list", "get_products", "create_media_buy"} <= agent_ops
    assert set(results["loaded"]["ops"]) == agent_ops
    for server in ("floor", "agent", "loaded"):
        assert results[server]["cold_start_s"] > 0 and results[server]["rss_mib"] > 0
        for name, op in results[server]["ops"].items():
            assert op["requests"] > 0, (server, name)
            assert op["errors"] == 0, (server, name, op["first_error"])
    assert results["agent"]["ops"]["tools/list"]["payload_bytes"] > 1000
    for line in ("| get_products |", "cold start", "RSS after the load", "tools/list payload"):
        assert line in report
    assert "With 50 media buys bulk-loaded" in report
