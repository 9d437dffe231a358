"""One buyer's MCP connection. Every call is timed, logged as a journey step and checked
for AdCP errors: a failure becomes ``JourneyFailed`` with the code, message, field and
suggestion the server gave, so the journey stops with a sentence, not a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
import httpx2
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from mcp.shared.exceptions import MCPError

from simulations.errors import JourneyFailed, Refused

JsonObject = dict[str, Any]
# What a dead or unreachable server looks like through fastmcp (which speaks httpx2, and
# reports a failed connect as RuntimeError).
TRANSPORT_ERRORS = (MCPError, RuntimeError, OSError, httpx.HTTPError, httpx2.HTTPError)
TRANSIENT_ATTEMPTS = 4


@dataclass
class Step:
    """One call of the journey. ``facts`` holds what the answer meant in terms that do not
    change between runs (no ids, no timestamps): it is what the fingerprint covers."""

    n: int
    phase: str
    tool: str
    label: str
    ok: bool
    ms: float
    status: str | None = None
    retries: int = 0
    facts: JsonObject = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: JsonObject | None = None

    def fingerprint_view(self) -> JsonObject:
        return {
            "phase": self.phase,
            "tool": self.tool,
            "label": self.label,
            "ok": self.ok,
            "status": self.status,
            "facts": self.facts,
            "error": (self.error or {}).get("code"),
        }


def describe_error(error: JsonObject) -> str:
    text = f"{error.get('code', 'ERROR')}: {error.get('message', '(no message)')}"
    if error.get("field"):
        text += f" (field {error['field']})"
    if error.get("suggestion"):
        text += f" — {error['suggestion']}"
    return text


class BuyerSession:
    """An authenticated MCP client for one buyer, recording every step it takes."""

    def __init__(
        self,
        name: str,
        mcp_url: str,
        token: str,
        on_step: Callable[[str, Step], None] | None = None,
    ) -> None:
        self.name = name
        self.steps: list[Step] = []
        self._on_step = on_step
        transport = StreamableHttpTransport(mcp_url, headers={"authorization": f"Bearer {token}"})
        self._client = Client(transport, timeout=120)

    async def __aenter__(self) -> BuyerSession:
        try:
            await self._client.__aenter__()
        except TRANSPORT_ERRORS as exc:
            raise JourneyFailed(f"{self.name}: cannot open the MCP session: {exc!r}") from None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(*TRANSPORT_ERRORS):  # the server may already be gone
            await self._client.__aexit__(exc_type, exc, tb)

    async def call(
        self,
        phase: str,
        tool: str,
        args: JsonObject,
        label: str = "",
        facts: Callable[[JsonObject], JsonObject] | None = None,
        handled: tuple[str, ...] = (),
    ) -> JsonObject:
        """Call ``tool``; return its structured answer or raise ``JourneyFailed``
        (``Refused`` for an error code in ``handled``, which the caller deals with).
        Errors the server marks ``recovery: transient`` are retried a few times, as a
        buyer should; non-fatal ``errors`` next to a successful answer (e.g. an
        unsupported filter) are kept as the step's warnings."""
        started = time.perf_counter()
        step = Step(len(self.steps) + 1, phase, tool, label or tool, ok=False, ms=0.0)
        self.steps.append(step)
        for attempt in range(TRANSIENT_ATTEMPTS):
            step.retries = attempt
            data = await self._attempt(step, tool, args)
            transient = (step.error or {}).get("recovery") == "transient"
            if not transient or attempt == TRANSIENT_ATTEMPTS - 1:
                break
            await asyncio.sleep(0.1 * (attempt + 1))  # back off before retrying
        step.ms = _ms(started)
        if step.error is not None or data is None:
            self._report(step)
            if step.error is not None and step.error.get("code") in handled:
                raise Refused(self._failure(step), step.error)
            raise JourneyFailed(self._failure(step))
        step.ok = True
        step.status = str(data.get("status")) if data.get("status") else None
        step.warnings = [describe_error(e) for e in data.get("errors") or []]
        if facts is not None:
            step.facts = facts(data)
        self._report(step)
        return data

    async def _attempt(self, step: Step, tool: str, args: JsonObject) -> JsonObject | None:
        """One try: the answer, or None with ``step.error`` set."""
        step.error = None
        try:
            result = await self._client.call_tool(tool, args, raise_on_error=False)
        except TRANSPORT_ERRORS as exc:
            step.error = {"code": "TRANSPORT_ERROR", "message": repr(exc)}
            return None
        data = result.structured_content
        if data is None:
            text = " ".join(getattr(c, "text", "") for c in result.content)
            step.error = {"code": "NO_STRUCTURED_CONTENT", "message": text[:300]}
        elif result.is_error or data.get("status") == "failed":
            errors = data.get("errors") or [{"code": "UNKNOWN", "message": str(data)[:300]}]
            step.error = errors[0]
            step.status = str(data.get("status", "failed"))
            return None
        return data

    async def external(
        self,
        phase: str,
        tool: str,
        label: str,
        work: Awaitable[JsonObject],
        facts: Callable[[JsonObject], JsonObject] | None = None,
    ) -> JsonObject:
        """A step taken outside MCP (the publisher's admin API), logged like the others
        so the journey reads as one story."""
        started = time.perf_counter()
        step = Step(len(self.steps) + 1, phase, tool, label, ok=False, ms=0.0)
        self.steps.append(step)
        try:
            data = await work
        except JourneyFailed as exc:
            step.ms = _ms(started)
            step.error = {"code": "ADMIN_API_ERROR", "message": str(exc)}
            self._report(step)
            raise JourneyFailed(f"{self.name}: step {step.n} ({phase}: {label}) — {exc}") from None
        step.ms, step.ok = _ms(started), True
        if facts is not None:
            step.facts = facts(data)
        self._report(step)
        return data

    @property
    def last(self) -> Step:
        return self.steps[-1]

    def _report(self, step: Step) -> None:
        if self._on_step is not None:
            self._on_step(self.name, step)

    def _failure(self, step: Step) -> str:
        assert step.error is not None
        return (
            f"{self.name}: step {step.n} ({step.phase}: {step.label}) — {step.tool} failed: "
            + describe_error(step.error)
        )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
