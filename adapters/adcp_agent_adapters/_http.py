"""The retrying JSON-over-HTTP client shared by the REST ad-server adapters (Kevel, Triton).

One place decides what a failed call means for a buyer:

=====================  =====================================================  ==========
ad server answers      AdcpError                                              recovery
=====================  =====================================================  ==========
401                    CONFIGURATION_ERROR (the tenant's API key is wrong)    terminal
403                    PERMISSION_DENIED                                      terminal
400 / 422              VALIDATION_ERROR, the ad server's message in details   correctable
404                    REFERENCE_NOT_FOUND                                    correctable
409                    CONFLICT                                               correctable
429                    retried after Retry-After, then RATE_LIMITED           transient
5xx, network error     retried with backoff, then SERVICE_UNAVAILABLE         transient
=====================  =====================================================  ==========

Retries are bounded (``max_retries``) and wait through an injected ``sleep`` so tests run
instantly. A POST that got a 500/504 or timed out reading is *not* repeated: the ad server
may have created the object, and a second campaign or flight is worse than an error.
The API key never appears in an error.
"""

from __future__ import annotations

import asyncio
import math
import os
import string
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adcp_agent.adapter_protocol import Forecast, ForecastRequest
from adcp_agent.errors import AdcpError
from adcp_agent.tls import client_tls

SleepFn = Callable[[float], Awaitable[None]]
T = TypeVar("T")

_SAFE_POST_RETRY = {429, 502, 503}  # the request was not processed
_STATUS_CODES = {401: "CONFIGURATION_ERROR", 403: "PERMISSION_DENIED", 404: "REFERENCE_NOT_FOUND"}


class HttpAdapterConfig(BaseModel):
    """Credentials, timeouts and retry budget common to REST ad-server adapters."""

    model_config = ConfigDict(extra="forbid")

    api_key: str | None = Field(default=None, min_length=1, description="The API key itself.")
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable holding the API key (preferred).",
    )
    timeout_s: float = Field(default=30.0, gt=0, le=300)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=60)
    max_retries: int = Field(default=3, ge=0, le=10)
    max_retry_after_s: float = Field(
        default=60.0, ge=0, le=600, description="Longest Retry-After we wait before giving up."
    )
    poll_interval_s: float = Field(default=2.0, gt=0, le=60)
    poll_deadline_s: float = Field(default=120.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _exactly_one_key(self) -> Self:
        if (self.api_key is None) == (self.api_key_env is None):
            raise ValueError("set exactly one of api_key or api_key_env")
        return self

    def resolve_api_key(self, ad_server: str) -> str:
        if self.api_key is not None:
            return self.api_key
        value = os.environ.get(self.api_key_env or "", "")
        if not value:
            raise AdcpError(
                "CONFIGURATION_ERROR",
                f"The {ad_server} API key variable {self.api_key_env} is not set.",
                field="adapter_config.api_key_env",
                suggestion=f"Export {self.api_key_env} in the server's environment.",
            )
        return value


def path_placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@dataclass(frozen=True)
class HttpSettings:
    ad_server: str  # "kevel", "triton_digital": named in every error's details
    label: str  # "Kevel", "Triton Digital": named in messages
    base_url: str
    headers: Mapping[str, str]
    config: HttpAdapterConfig
    backoff_s: float = 0.5
    message_of: Callable[[httpx.Response], str] = field(default=lambda r: response_message(r))


def response_message(response: httpx.Response) -> str:
    """The ad server's own words for a failure, from the usual JSON error shapes."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("Error", "error", "Message", "message", "detail", "errors"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:500]
            if isinstance(value, list | dict) and value:
                return str(value)[:500]
    return str(body)[:500]


def require_id(body: Any, key: str, *, label: str, what: str, code: str) -> str:
    """The new object's id from a create answer; ``code`` when the answer has none."""
    value = body.get(key) if isinstance(body, dict) else None
    if value in (None, ""):
        raise AdcpError(
            code,
            f"{label} accepted the {what} but answered without '{key}'.",
            recovery="transient" if code == "SERVICE_UNAVAILABLE" else None,
            details={"ad_server": label.lower().replace(" ", "_"), "answer": str(body)[:300]},
        )
    return str(value)


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:  # "nan" would pass every "too long?" check and then fail asyncio.sleep
        return None if math.isnan(seconds) else max(seconds, 0.0)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


class ApiSession:
    """One operation's connection to the ad server (a pooled httpx.AsyncClient)."""

    def __init__(self, client: httpx.AsyncClient, settings: HttpSettings, sleep: SleepFn):
        self._client = client
        self._s = settings
        self._sleep = sleep

    def _details(self, method: str, path: str, **extra: Any) -> dict[str, Any]:
        return {"ad_server": self._s.ad_server, "request": f"{method} {path}", **extra}

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send, retrying what is safe to retry; the decoded JSON body (None if empty)."""
        cfg = self._s.config
        attempt = 0
        while True:
            attempt += 1
            last = attempt > cfg.max_retries
            try:
                response = await self._client.request(
                    method, path, json=json, data=data, params=params
                )
            except httpx.TransportError as exc:
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if last or (method == "POST" and not unsent):
                    raise AdcpError(
                        "SERVICE_UNAVAILABLE",
                        f"{self._s.label} could not be reached ({type(exc).__name__}).",
                        recovery="transient",
                        details=self._details(method, path, attempts=attempt),
                    ) from None
                await self._sleep(self._backoff(attempt))
                continue
            if response.is_success:
                try:
                    return response.json() if response.content.strip() else None
                except ValueError:  # "Successfully deleted" and other plain-text answers
                    return None
            status = response.status_code
            retryable = status == 429 or status >= 500
            if method == "POST":
                retryable = status in _SAFE_POST_RETRY
            wait = self._backoff(attempt)
            if status == 429:
                after = _retry_after(response)
                if after is not None:
                    if after > cfg.max_retry_after_s:
                        last = True
                    wait = after
            if retryable and not last:
                await self._sleep(wait)
                continue
            raise self._error(response, method, path, attempt)

    def _backoff(self, attempt: int) -> float:
        return min(self._s.backoff_s * 2 ** (attempt - 1), 30.0)

    def _error(self, response: httpx.Response, method: str, path: str, attempt: int) -> AdcpError:
        status = response.status_code
        message = self._s.message_of(response)
        name = self._s.label
        details = self._details(method, path, status=status, ad_server_message=message)
        if status == 429:
            details.update(attempts=attempt, retry_after_s=_retry_after(response))
            return AdcpError(
                "RATE_LIMITED",
                f"{name} is rate limiting our requests.",
                recovery="transient",
                details=details,
            )
        if status >= 500:
            details["attempts"] = attempt
            return AdcpError(
                "SERVICE_UNAVAILABLE",
                f"{name} failed ({status}): {message}",
                recovery="transient",
                details=details,
            )
        if status in (400, 422):
            return AdcpError(
                "VALIDATION_ERROR", f"{name} rejected the request: {message}", details=details
            )
        if status == 409:
            return AdcpError("CONFLICT", f"{name} reported a conflict: {message}", details=details)
        code = _STATUS_CODES.get(status, "VALIDATION_ERROR")
        text = {
            "CONFIGURATION_ERROR": f"{name} rejected the tenant's API key.",
            "PERMISSION_DENIED": f"{name} denied access: {message}",
            "REFERENCE_NOT_FOUND": f"{name} has no such object ({method} {path}).",
        }.get(code, f"{name} refused the request ({status}): {message}")
        suggestion = "Check the API key in the tenant's adapter_config." if status == 401 else None
        return AdcpError(code, text, suggestion=suggestion, details=details)

    async def poll(
        self,
        fetch: Callable[[], Awaitable[T]],
        done: Callable[[T], bool],
        *,
        what: str,
        ref: str,
    ) -> T:
        """Call ``fetch`` until ``done``; SERVICE_UNAVAILABLE once the deadline passes.
        The deadline counts both the waits we slept and the wall clock."""
        cfg = self._s.config
        waited = 0.0
        started = time.monotonic()
        while True:
            result = await fetch()
            if done(result):
                return result
            elapsed = max(waited, time.monotonic() - started)
            if elapsed + cfg.poll_interval_s > cfg.poll_deadline_s:
                raise AdcpError(
                    "SERVICE_UNAVAILABLE",
                    f"{self._s.label} did not finish the {what} within {cfg.poll_deadline_s:g} s.",
                    recovery="transient",
                    suggestion="Retry later; the ad server is still working on it.",
                    details={"ad_server": self._s.ad_server, "reference": ref},
                )
            await self._sleep(cfg.poll_interval_s)
            waited += cfg.poll_interval_s


class HttpApi:
    """Opens an ``ApiSession`` per adapter operation, so no connection pool outlives it."""

    def __init__(
        self,
        settings: Callable[[], HttpSettings],
        *,
        sleep: SleepFn | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings  # built lazily: an unset key env var fails the call, not boot
        self._sleep = sleep if sleep is not None else asyncio.sleep
        self._transport = transport

    @asynccontextmanager
    async def session(self) -> AsyncIterator[ApiSession]:
        s = self._settings()
        cfg = s.config
        timeout = httpx.Timeout(cfg.timeout_s, connect=cfg.connect_timeout_s)
        headers = {"Accept": "application/json", **s.headers}
        async with httpx.AsyncClient(
            base_url=s.base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            transport=self._transport,
            follow_redirects=False,
            verify=client_tls(),
        ) as client:
            yield ApiSession(client, s, self._sleep)


def capacity_forecast(request: ForecastRequest) -> Forecast:
    """For ad servers without a usable forecasting API: the product's
    ``inventory.daily_impressions`` × ``fill_rate`` over the flight, minus what core
    has already reserved."""
    seconds = max((request.end - request.start).total_seconds(), 0.0)
    daily = float(request.inventory.get("daily_impressions", 0))
    fill = float(request.inventory.get("fill_rate", 1.0))
    capacity = int(daily * fill * seconds / 86_400)
    return Forecast(max(capacity - request.reserved_impressions, 0), capacity)
