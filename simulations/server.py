"""The server a simulation runs against: started here as a subprocess (the same command a
user types) or given by URL, and the publisher's admin API the simulation needs for
approvals and the simulated clock."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from simulations.errors import JourneyFailed

ADMIN_PREFIX = "/api/v1/tenant-management"
KEY_HEADER = "X-Tenant-Management-API-Key"
# Far from the wall clock on purpose: a simulation never depends on today's date, and a
# fixed start makes every date in the result the same from one run to the next.
SIM_CLOCK_START = "2031-03-03T00:00:00Z"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LocalServer:
    """``python -m adcp_agent.cli serve --sim-clock`` in a private data dir. The process is
    ours alone: it is stopped by its handle, and its data dir is deleted afterwards."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.token = f"adcp_sim_{secrets.token_hex(16)}"
        self.log_path = log_path
        self._data = tempfile.TemporaryDirectory(prefix="adcp-sim-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        """Start the process and return at once: the caller has its own imports to do
        while the server boots; ``wait_healthy`` joins the two."""
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)  # never someone's Postgres: a throwaway SQLite file
        env.update(
            ADCP_AGENT_DEMO_TOKEN=self.token,
            ADCP_AGENT_SIM_CLOCK_START=SIM_CLOCK_START,
            ADCP_AGENT_LOG_LEVEL="warning",
            # A private server: the admin limit (100/min) would only slow many buyers down.
            ADCP_AGENT_ADMIN_RATE_LIMIT_PER_MINUTE="100000",
            ADCP_AGENT_MCP_RATE_LIMIT_PER_MINUTE="100000",
        )
        cmd = [sys.executable, "-m", "adcp_agent.cli", "serve", "--sim-clock"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--data-dir", self._data.name]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise JourneyFailed(
                    f"the server exited with code {self._proc.returncode} while starting:\n"
                    + self.log_tail()
                )
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # polling a starting process, with a deadline
        self.stop()
        raise JourneyFailed(f"the server was not healthy within {START_TIMEOUT_S:.0f} s")

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._data.cleanup()


@dataclass
class AdminApi:
    """The publisher's side of the journey: approving guaranteed orders, creating buyer
    principals and moving the simulated clock (all need the admin API key)."""

    base_url: str
    key: str | None = None

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {KEY_HEADER: self.key} if self.key else {}
        url = f"{self.base_url}{ADMIN_PREFIX}{path}"
        async with httpx.AsyncClient(timeout=60) as http:
            for _ in range(3):
                try:
                    response = await http.request(method, url, json=body, headers=headers)
                except httpx.HTTPError as exc:
                    raise JourneyFailed(f"admin API {method} {path}: {exc!r}") from None
                if response.status_code != 429:
                    break
                # The admin limit is per key and per minute: wait as the server says.
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
        if response.status_code >= 400:
            raise JourneyFailed(f"admin API {method} {path}: {_rest_error(response)}")
        return response.json()

    async def init_key(self) -> str:
        issued = await self._request("POST", "/init-api-key")
        self.key = str(issued["api_key"])
        return self.key

    async def now(self) -> datetime:
        view = await self._request("GET", "/clock")
        if not view.get("simulated"):
            raise JourneyFailed(
                "the server runs on the real clock; start it with "
                "'adcp-agent serve --sim-clock' to simulate delivery"
            )
        return datetime.fromisoformat(str(view["now"]).replace("Z", "+00:00"))

    async def advance(self, hours: float) -> datetime:
        view = await self._request("POST", "/clock/advance", {"hours": hours})
        return datetime.fromisoformat(str(view["now"]).replace("Z", "+00:00"))

    async def approve(self, task_id: str) -> dict[str, Any]:
        decided: dict[str, Any] = await self._request("POST", f"/approvals/{task_id}/approve", {})
        return decided

    async def create_principal(self, tenant_id: str, name: str) -> str:
        created = await self._request("POST", f"/tenants/{tenant_id}/principals", {"name": name})
        return str(created["access_token"])


def _rest_error(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code} {response.text[:200]}"
    field = (error.get("details") or {}).get("field")
    where = f" (field {field})" if field else ""
    return f"HTTP {response.status_code} {error.get('code')}: {error.get('message')}{where}"
