"""The MCP Inspector's CLI, as the README and the ``serve`` banner tell users to run
it, lists and calls our tools over streamable HTTP with a bearer token.

The inspector is fetched by npx from the npm registry (the one thing in the suite that
leaves 127.0.0.1) and kept in npm's cache, so later runs start offline. The version is
pinned: from 0.16 the CLI takes ``--header``, and 0.21.2 is the last release whose CLI
still runs on Node 20 (later ones declare Node >= 22, and npx on Node 20 would quietly
fall back to 0.15, which has no ``--header``). Skipped when node/npx are missing or the
package cannot be fetched."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.support import DEMO_TOKEN, LiveServer

INSPECTOR = "@modelcontextprotocol/inspector@0.21.2"
# What npm prints when the package could not be downloaded (offline, proxy, registry).
FETCH_FAILURES = ("npm error", "npm ERR", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNRE", "E404")

pytestmark = pytest.mark.skipif(
    shutil.which("npx") is None or shutil.which("node") is None,
    reason="node/npx not installed: the MCP Inspector CLI cannot run",
)


def inspector(live: LiveServer, *args: str) -> dict[str, Any]:
    argv = [
        "npx", "--prefer-offline", "-y", INSPECTOR, "--cli", live.mcp_url,
        "--transport", "http", "--header", f"Authorization: Bearer {DEMO_TOKEN}", *args,
    ]  # fmt: skip
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip(f"npx could not fetch {INSPECTOR} within 300 s")
    output = done.stdout + done.stderr
    if done.returncode != 0 and any(sign in output for sign in FETCH_FAILURES):
        pytest.skip(f"npx could not fetch {INSPECTOR}: {output.strip()[-300:]}")
    assert done.returncode == 0, output
    return json.loads(done.stdout[done.stdout.index("{") :])


def test_inspector_lists_the_tools_with_their_schemas(live: LiveServer) -> None:
    listed = inspector(live, "--method", "tools/list")
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert {"get_products", "create_media_buy", "get_signals", "activate_signal"} <= set(tools)
    brief = tools["get_products"]["inputSchema"]["properties"]["brief"]
    assert brief  # the argument the next test sends is declared
    # Inlined once at start-up: clients that cannot follow $ref see whole schemas.
    assert "$ref" not in json.dumps(tools["create_media_buy"]["inputSchema"])


def test_inspector_calls_get_products_with_a_brief(live: LiveServer) -> None:
    result = inspector(
        live, "--method", "tools/call", "--tool-name", "get_products", "--tool-arg", "brief=sports"
    )
    assert not result.get("isError"), result
    products = result["structuredContent"]["products"]
    assert products and all("sport" in p["name"].lower() for p in products[:2])
    assert products[0]["brief_relevance"]
