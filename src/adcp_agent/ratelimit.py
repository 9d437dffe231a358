"""Per-caller rate limits: 1000 requests a minute per token on MCP, 100 a minute per
API key on the tenant-management API (both configurable).

A token bucket per caller: it holds ``limit`` requests and refills at ``limit`` per
minute, so a quiet caller may burst up to the limit and a busy one is held to the rate.
Each bucket is two numbers, and full (idle) buckets are swept away, so a flood of
distinct keys cannot grow memory without bound. The state is in-process: each server
process enforces its own limits. The clock is injected so tests never sleep.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adcp_agent.asgi_refusals import error_body, send_json
from adcp_agent.config import Settings
from adcp_agent.errors import AdcpError
from adcp_agent.services.identity import token_from_headers

Clock = Callable[[], float]  # seconds since the epoch (X-RateLimit-Reset is epoch time)

ADMIN_PREFIX = "/api/v1/tenant-management"
MCP_PREFIX = "/mcp"
_WINDOW_S = 60.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # epoch second at which the caller has its full allowance again
    retry_after: int  # seconds until the next request is allowed; 0 when allowed

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_at).encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(self.retry_after).encode()))
        return out


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    def __init__(self, per_minute: int, *, clock: Clock = time.time) -> None:
        if per_minute < 1:
            raise ValueError("a rate limit must allow at least one request a minute")
        self.limit = per_minute
        self._rate = per_minute / _WINDOW_S  # tokens per second
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._last_sweep = clock()

    def hit(self, key: str) -> Decision:
        """Count one request by ``key`` and say whether it may proceed."""
        with self._lock:
            now = self._clock()
            self._sweep(now)
            bucket = self._buckets.get(key)
            tokens = self._level(bucket, now)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[key] = _Bucket(tokens, now)
        return Decision(
            allowed=allowed,
            limit=self.limit,
            remaining=math.floor(tokens),
            reset_at=math.ceil(now + (self.limit - tokens) / self._rate),
            retry_after=0 if allowed else max(1, math.ceil((1 - tokens) / self._rate)),
        )

    def _level(self, bucket: _Bucket | None, now: float) -> float:
        if bucket is None:
            return float(self.limit)
        # max(): a wall clock stepping backwards must not drain anyone's allowance.
        return min(float(self.limit), bucket.tokens + max(0.0, now - bucket.updated) * self._rate)

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < _WINDOW_S:
            return
        self._last_sweep = now
        full = [k for k, b in self._buckets.items() if self._level(b, now) >= self.limit]
        for key in full:
            del self._buckets[key]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def mcp_key(scope: Scope) -> str:
    """The buyer's token (hashed: raw secrets never sit in memory maps), or its IP."""
    token = (token_from_headers(_headers(scope)) or "").strip()
    return f"token:{_digest(token)}" if token else f"ip:{_client_ip(scope)}"


def admin_key(scope: Scope) -> str:
    key = _headers(scope).get("x-tenant-management-api-key", "").strip()
    return f"key:{_digest(key)}" if key else f"ip:{_client_ip(scope)}"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


class RateLimitMiddleware:
    """Applies the MCP and admin limits by path; every other route is untouched."""

    def __init__(self, app: ASGIApp, *, settings: Settings, clock: Clock | None = None) -> None:
        self.app = app
        clock = clock or time.time
        self.mcp = TokenBucketLimiter(settings.mcp_rate_limit_per_minute, clock=clock)
        self.admin = TokenBucketLimiter(settings.admin_rate_limit_per_minute, clock=clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if _under(path, ADMIN_PREFIX):
            decision, body = self.admin.hit(admin_key(scope)), _rest_body
        elif _under(path, MCP_PREFIX):
            decision, body = self.mcp.hit(mcp_key(scope)), _jsonrpc_body
        else:
            await self.app(scope, receive, send)
            return
        if not decision.allowed:
            await _reject(send, decision, body(decision))
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *decision.headers()]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _error(decision: Decision) -> AdcpError:
    return AdcpError(
        "RATE_LIMITED",
        f"Too many requests: the limit is {decision.limit} a minute.",
        suggestion=f"Retry after {decision.retry_after} s (see the Retry-After header).",
        details={"limit": decision.limit, "retry_after": decision.retry_after},
    )


def _rest_body(decision: Decision) -> dict[str, Any]:
    return error_body(_error(decision), jsonrpc_code=None)


def _jsonrpc_body(decision: Decision) -> dict[str, Any]:
    return error_body(_error(decision), jsonrpc_code=-32000)


async def _reject(send: Send, decision: Decision, body: dict[str, Any]) -> None:
    await send_json(send, 429, body, decision.headers())
