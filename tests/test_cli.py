"""The README's run command as a user runs it: a real process, then kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlmodel import select

from adcp_agent.db.engine import create_database
from adcp_agent.db.models import SignalActivation
from tests.support import assert_valid, call, free_port, mcp_client

TOKEN = "adcp_cli_test_token_0123456789abcdefgh"


def _start(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "ADCP_AGENT_DEMO_TOKEN": TOKEN, "ADCP_AGENT_LOG_LEVEL": "warning"}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adcp_agent.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early:\n{proc.stdout.read()}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("serve did not answer /health within 30 s")


async def test_serve_prints_connection_details_and_survives_kill_9(tmp_path: Path) -> None:
    port = free_port()
    proc = _start(tmp_path, port)
    url = f"http://127.0.0.1:{port}/mcp/"
    try:
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"http://127.0.0.1:{port}/health")).json()
        async with mcp_client(url, TOKEN) as client:
            activated = await call(
                client, "activate_signal", {"signal_agent_segment_id": "business_decision_makers"}
            )
    finally:
        proc.send_signal(signal.SIGKILL)  # no shutdown hooks, no flush: a crash
        banner = proc.communicate(timeout=10)[0]
    assert health["status"] == "healthy" and health["database"] == "connected"
    assert f"http://127.0.0.1:{port}/mcp/" in banner
    assert TOKEN in banner
    assert "npx -y @modelcontextprotocol/inspector@0.21.2 --cli" in banner
    assert '"mcpServers"' in banner
    assert not activated.is_error
    assert_valid("activate_signal", activated.data)

    # What was acknowledged before the crash is there after it.
    db = create_database(f"sqlite+aiosqlite:///{tmp_path / 'adcp-agent.db'}")
    async with db.session() as session:
        rows = (await session.exec(select(SignalActivation))).all()
    await db.dispose()
    assert [r.signal_id for r in rows] == ["business_decision_makers"]

    # Restarting on the same data dir keeps the data and the token.
    proc = _start(tmp_path, port)
    try:
        async with mcp_client(url, TOKEN) as client:
            again = await call(
                client, "activate_signal", {"signal_agent_segment_id": "business_decision_makers"}
            )
            products = await call(client, "get_products", {"buying_mode": "wholesale"})
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert again.data["deployments"] == activated.data["deployments"]
    assert products.data["pagination"]["total_count"] == 11


def test_serve_stops_with_the_migration_error_when_the_schema_cannot_be_upgraded(
    tmp_path: Path,
) -> None:
    """``serve`` migrates in a child process; a failure there stops the server with
    Alembic's message instead of serving an unknown schema."""
    (tmp_path / "adcp-agent.db").touch()
    with sqlite3.connect(tmp_path / "adcp-agent.db") as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('9999_from_the_future')")
    env = {**os.environ, "ADCP_AGENT_DEMO_TOKEN": TOKEN}
    env.pop("DATABASE_URL", None)
    argv = [sys.executable, "-m", "adcp_agent.cli", "serve", "--port", str(free_port())]
    done = subprocess.run(
        [*argv, "--data-dir", str(tmp_path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "migrations failed" in done.stderr and "9999_from_the_future" in done.stderr


def test_what_start_up_built_is_kept_out_of_the_collectors_walks() -> None:
    """Before serving, start-up's objects are frozen (gc.freeze): a full collection
    under load then walks what serving allocated, not the whole MCP stack; and the
    collector runs every 10,000 net allocations, not every 700."""
    import gc

    from adcp_agent.cli import release_startup_memory

    before, threshold = gc.get_freeze_count(), gc.get_threshold()
    try:
        release_startup_memory()
        assert gc.get_freeze_count() > before + 1000
        # And the young generation is collected far less often than the default 700.
        assert gc.get_threshold()[0] >= 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
