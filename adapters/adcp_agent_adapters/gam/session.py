"""One tenant's connection to Google Ad Manager.

googleads is a blocking SOAP client (zeep + requests). Every call runs in a worker thread
with a deadline and is retried, with exponential backoff and jitter, while the failure is
transient (ServerError, QuotaError, timeouts, connection errors). Service clients are
built lazily, once each: building one downloads the service's WSDL.

Tests and tooling inject the seams: ``oauth2_client`` (so no token refresh reaches
Google), ``server`` (a local fake), ``sleep``/``monotonic``/``rng``. The server is
deliberately not part of ``GamConfig``: a tenant must not be able to send the network's
OAuth token to a host of its choosing.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import zeep.cache
from google.oauth2 import service_account
from googleads import ad_manager, oauth2

from adcp_agent.errors import AdcpError
from adcp_agent.tls import client_tls
from adcp_agent_adapters.gam import faults
from adcp_agent_adapters.gam.config import GamConfig, ServiceAccountKey, resolve_credentials

log = logging.getLogger("adcp_agent_adapters.gam")

PAGE_SIZE = 500
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
# WSDLs are the same for every tenant of a version: share one in-memory cache.
_WSDL_CACHE = zeep.cache.InMemoryCache(timeout=6 * 3600)

Sleep = Callable[[float], Awaitable[None]]


class _RedactAuthorization(logging.Filter):
    """googleads' DEBUG request log means to redact the OAuth header but looks for
    'authorization' while the header is 'Authorization': scrub it here."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                {k: "REDACTED" if k.lower() == "authorization" else v for k, v in a.items()}
                if isinstance(a, dict)
                else a
                for a in record.args
            )
        return True


logging.getLogger("googleads.soap").addFilter(_RedactAuthorization())


def build_oauth2_client(
    config: GamConfig, env: Mapping[str, str] | None = None
) -> oauth2.GoogleOAuth2Client:
    """googleads' OAuth client for the configured credential style. Neither style talks
    to Google here; the first SOAP call fetches a token."""
    creds = resolve_credentials(config, env)
    if isinstance(creds, ServiceAccountKey):
        credentials = service_account.Credentials.from_service_account_info(
            creds.info, scopes=[oauth2.GetAPIScope("ad_manager")]
        )
        return oauth2.GoogleCredentialsClient(credentials)
    return oauth2.GoogleRefreshTokenClient(
        creds.client_id, creds.client_secret, creds.refresh_token
    )


def pql_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"xsi_type": "BooleanValue", "value": value}
    if isinstance(value, int):
        return {"xsi_type": "NumberValue", "value": str(value)}
    if isinstance(value, list | tuple | set):
        return {"xsi_type": "SetValue", "values": [pql_value(v) for v in value]}
    return {"xsi_type": "TextValue", "value": str(value)}


def statement(
    where: str = "",
    values: Mapping[str, Any] | None = None,
    *,
    limit: int | None = PAGE_SIZE,
    offset: int | None = 0,
) -> dict[str, Any]:
    """A PQL statement with bind variables (never string-interpolated values)."""
    parts = [f"WHERE {where}"] if where else []
    if limit is not None:
        parts.append(f"LIMIT {limit}")
    if offset is not None:
        parts.append(f"OFFSET {offset}")
    return {
        "query": " ".join(parts),
        "values": [{"key": k, "value": pql_value(v)} for k, v in (values or {}).items()],
    }


class GamSession:
    def __init__(
        self,
        config: GamConfig,
        *,
        oauth2_client: oauth2.GoogleOAuth2Client | None = None,
        server: str | None = None,
        wsdl_cache: Any = None,
        sleep: Sleep | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
        env: Mapping[str, str] | None = None,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
    ) -> None:
        self.config = config
        self.server = server or ad_manager.DEFAULT_ENDPOINT
        self._oauth2_client = oauth2_client
        self._wsdl_cache = wsdl_cache if wsdl_cache is not None else _WSDL_CACHE
        self.sleep: Sleep = sleep or asyncio.sleep
        self.monotonic = monotonic
        self._now = now or (lambda: datetime.now(UTC))
        self._rng = rng or random.Random()
        self._env = env
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._client: ad_manager.AdManagerClient | None = None
        self._services: dict[str, Any] = {}
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now()

    # --- blocking side (worker threads) ---------------------------------------------

    def _ad_manager_client(self) -> ad_manager.AdManagerClient:
        if self._client is None:
            oauth = self._oauth2_client or build_oauth2_client(self.config, self._env)
            self._client = ad_manager.AdManagerClient(
                oauth,
                self.config.application_name,
                network_code=self.config.network_code,
                cache=self._wsdl_cache,
                timeout=self.config.timeout_seconds,
            )
        return self._client

    def _service(self, name: str) -> Any:
        with self._lock:
            service = self._services.get(name)
            if service is None:
                service = self._ad_manager_client().GetService(
                    name, version=self.config.api_version, server=self.server
                )
                self._services[name] = service
            return service

    def _invoke(self, service: str, method: str, args: tuple[Any, ...]) -> Any:
        operation = f"{service}.{method}"
        try:
            return getattr(self._service(service), method)(*args)
        except AdcpError:
            raise
        except Exception as exc:  # noqa: BLE001 - every googleads failure becomes typed
            raise faults.from_exception(exc, operation) from exc

    def _download(self, url: str) -> bytes:
        if not url.startswith(("https://", "http://")):
            raise faults.error(
                "VALIDATION_ERROR", "Only http(s) URLs can be downloaded.", "download", "URL"
            )
        try:
            with (
                httpx.Client(
                    timeout=self.config.timeout_seconds, follow_redirects=True, verify=client_tls()
                ) as http,
                http.stream("GET", url) as resp,
            ):
                resp.raise_for_status()
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise faults.error(
                            "VALIDATION_ERROR",
                            f"The file at {url} is larger than {MAX_DOWNLOAD_BYTES} bytes.",
                            "download",
                            "TOO_LARGE",
                        )
                    chunks.append(chunk)
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            raise faults.error(
                "SERVICE_UNAVAILABLE" if status >= 500 else "VALIDATION_ERROR",
                f"Downloading {url} failed with HTTP {status}.",
                "download",
                f"HTTP_{status}",
                transient=status >= 500,
            ) from None
        except httpx.HTTPError as exc:
            raise faults.error(
                "SERVICE_UNAVAILABLE",
                f"Downloading {url} failed ({type(exc).__name__}).",
                "download",
                type(exc).__name__,
                transient=True,
            ) from None
        body = b"".join(chunks)
        return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body

    # --- async side ------------------------------------------------------------------

    async def _retrying(self, operation: str, fn: Callable[[], Any]) -> Any:
        timeout = self.config.timeout_seconds
        attempt = 1
        while True:
            try:
                return await asyncio.wait_for(asyncio.to_thread(fn), timeout)
            except TimeoutError:
                err = faults.error(
                    "SERVICE_UNAVAILABLE",
                    f"Google Ad Manager did not answer {operation} within {timeout:g} s.",
                    operation,
                    "TIMEOUT",
                    transient=True,
                )
            except AdcpError as exc:
                err = exc
            if err.recovery != "transient" or attempt >= self.config.max_attempts:
                if attempt > 1:
                    err.details.setdefault("attempts", attempt)
                raise err
            delay = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
            delay *= 0.5 + self._rng.random() / 2  # jitter: spread retries of many workers
            log.warning(
                "GAM %s failed (%s), retry %d/%d in %.1fs",
                operation,
                err.details.get("gam_error", err.code),
                attempt,
                self.config.max_attempts - 1,
                delay,
            )
            await self.sleep(delay)
            attempt += 1

    async def call(self, service: str, method: str, *args: Any) -> Any:
        """One SOAP operation, e.g. ``call("OrderService", "createOrders", [order])``."""
        return await self._retrying(
            f"{service}.{method}", lambda: self._invoke(service, method, args)
        )

    async def download(self, url: str) -> bytes:
        return await self._retrying("download", lambda: self._download(url))

    async def select(
        self, service: str, method: str, where: str, values: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """Every result of a ``get*ByStatement`` query, page by page."""
        results: list[Any] = []
        offset = 0
        while True:
            page = await self.call(
                service, method, statement(where, values, limit=PAGE_SIZE, offset=offset)
            )
            batch = list(getattr(page, "results", None) or [])
            results.extend(batch)
            total = int(getattr(page, "totalResultSetSize", 0) or 0)
            offset += PAGE_SIZE
            if not batch or offset >= total:
                return results

    async def first(
        self, service: str, method: str, where: str, values: Mapping[str, Any]
    ) -> Any | None:
        page = await self.call(service, method, statement(where, values, limit=1, offset=0))
        batch = list(getattr(page, "results", None) or [])
        return batch[0] if batch else None
