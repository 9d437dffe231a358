"""The SSRF guard for outbound notifications.

Webhook URLs come from publishers and buyers, so a URL must never make this server call
its own network: every address a host resolves to must be public (``is_global``), and
the request then goes to exactly the address that was checked (the connection is pinned
to it, with the original Host header and TLS server name), so a DNS answer that changes
between the check and the connect cannot redirect it. A tenant may allow private
destinations with ``features.allow_private_webhooks``: ``true`` for any, or a list of
addresses/CIDRs (e.g. ``["127.0.0.1/32"]``) for just those.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from adcp_agent.errors import AdcpError

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
FEATURE = "allow_private_webhooks"


class BlockedDestination(Exception):
    """The URL may not be called; retrying will not help until configuration changes."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class Allowance:
    """Which non-public addresses a tenant lets notifications reach."""

    any_private: bool = False
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_features(cls, features: Mapping[str, Any]) -> Allowance:
        value = features.get(FEATURE)
        if value is True:
            return cls(any_private=True)
        networks: list[IPNetwork] = []
        for item in value if isinstance(value, list) else []:
            try:
                networks.append(ipaddress.ip_network(str(item), strict=False))
            except ValueError:
                log.warning("ignoring %s entry %r: not an address or CIDR", FEATURE, item)
        return cls(networks=tuple(networks))

    def permits(self, ip: IPAddress) -> bool:
        return self.any_private or any(ip in net for net in self.networks)


@dataclass(frozen=True)
class Destination:
    url: str
    host: str
    port: int
    scheme: str
    ip: str  # the checked address the connection is pinned to


def _address(value: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _refusal(ip: IPAddress, allowance: Allowance) -> str | None:
    if ip.is_global and not ip.is_multicast:
        return None
    if allowance.permits(ip):
        return None
    return (
        f"{ip} is not a public address (private, loopback, link-local or reserved); "
        f"set features.{FEATURE} on the tenant to allow it"
    )


def parse(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of an http(s) URL, or AdcpError naming what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise AdcpError("VALIDATION_ERROR", f"'{url}' is not a valid URL.", field="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AdcpError(
            "VALIDATION_ERROR", "The URL must be http:// or https:// with a host.", field="url"
        )
    if parts.username or parts.password:
        raise AdcpError("VALIDATION_ERROR", "Credentials in the URL are not accepted.", field="url")
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, port or default


def check_registration(url: str, allowance: Allowance, field: str = "url") -> None:
    """Fail fast when a URL is registered: bad syntax, a literal non-public address or
    ``localhost``. Hostnames are resolved (and checked again) at every delivery."""
    try:
        _, host, _ = parse(url)
    except AdcpError as exc:
        exc.field = field
        raise
    ip = _address(host)
    if ip is None and host.lower().rstrip(".") in ("localhost", "localhost.localdomain"):
        ip = ipaddress.ip_address("127.0.0.1")
    reason = _refusal(ip, allowance) if ip is not None else None
    if reason is not None:
        raise AdcpError("VALIDATION_ERROR", f"Notifications cannot go to {reason}.", field=field)


async def resolve(url: str, allowance: Allowance, resolver: Resolver) -> Destination:
    """Resolve the URL's host and check every address it resolves to."""
    try:
        scheme, host, port = parse(url)
    except AdcpError as exc:
        raise BlockedDestination(exc.message) from None
    literal = _address(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolver(host, port)
        except OSError as exc:
            raise ConnectionError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise ConnectionError(f"{host} resolved to no address")
    checked: list[IPAddress] = []
    for raw in addresses:
        ip = _address(raw)
        if ip is None:
            raise BlockedDestination(f"{host} resolved to an unusable address {raw!r}")
        reason = _refusal(ip, allowance)
        if reason is not None:
            raise BlockedDestination(f"{host} resolves to {reason}")
        checked.append(ip)
    return Destination(url=url, host=host, port=port, scheme=scheme, ip=str(checked[0]))


def pinned_request(
    client: httpx.AsyncClient,
    method: str,
    target: Destination,
    headers: Mapping[str, str],
    content: bytes | None = None,
) -> httpx.Request:
    """A request to exactly the checked address of ``target`` (the original Host header
    and TLS server name kept), never to whatever the name resolves to by then."""
    url = httpx.URL(target.url)
    return client.build_request(
        method,
        url.copy_with(host=target.ip),
        content=content,
        headers={**headers, "Host": url.netloc.decode("ascii")},
        extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
    )
