"""Rate limits on the admin API (per key) and on MCP (per token, or per IP when
anonymous), driven by an injected clock: nothing here sleeps."""

from __future__ import annotations

from pathlib import Path

from adcp_agent.ratelimit import TokenBucketLimiter
from tests.tenant_admin_support import KEY_HEADER, PREFIX, ManualClock, admin_api, error_of


async def test_the_101st_admin_request_in_a_minute_is_429(tmp_path: Path) -> None:
    async with admin_api(tmp_path) as api:
        await api.init_key()  # counted for the caller's IP, not for the key
        remaining = []
        for _ in range(100):
            response = await api.request("GET", "/tenants")
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "100"
            remaining.append(int(response.headers["x-ratelimit-remaining"]))
        limited = await api.request("GET", "/tenants")
        other_key = await api.client.get(f"{PREFIX}/tenants", headers={KEY_HEADER: "other"})
        api.clock.advance(1)
        recovered = await api.request("GET", "/tenants")

    assert remaining == list(range(99, -1, -1))
    assert limited.status_code == 429
    assert error_of(limited)["code"] == "RATE_LIMITED"
    assert error_of(limited)["details"]["limit"] == 100
    assert limited.headers["retry-after"] == "1"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert int(limited.headers["x-ratelimit-reset"]) == int(api.clock.now - 1) + 60
    # Each key has its own allowance (this one then fails authentication, not the limit).
    assert other_key.status_code == 401
    assert recovered.status_code == 200


async def test_admin_limit_is_configurable(tmp_path: Path) -> None:
    async with admin_api(tmp_path, admin_rate_limit_per_minute=2) as api:
        await api.init_key()
        statuses = [(await api.request("GET", "/health")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_mcp_is_limited_per_token(tmp_path: Path) -> None:
    async with admin_api(tmp_path, mcp_rate_limit_per_minute=3) as api:
        await api.init_key()
        tid = (await api.create_tenant(subdomain="pub"))["tenant_id"]
        token_a = (await api.create_principal(tid))["access_token"]
        token_b = (await api.create_principal(tid))["access_token"]
        allowed = [await api.mcp("get_products", {"brief": "news"}, token_a) for _ in range(3)]
        limited = await api.mcp("get_products", {"brief": "news"}, token_a)
        other_token = await api.mcp("get_products", {"brief": "news"}, token_b)
        anonymous = await api.mcp("get_products", {"brief": "news"})
        plain_health = await api.client.get("/health")

    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [r.headers["x-ratelimit-remaining"] for r in allowed] == ["2", "1", "0"]
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "20"  # 3 a minute: one request every 20 s
    body = limited.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["data"]["code"] == "RATE_LIMITED"
    assert other_token.status_code == 200
    assert anonymous.status_code == 200  # anonymous callers are counted by IP
    assert anonymous.headers["x-ratelimit-remaining"] == "2"
    assert "x-ratelimit-limit" not in plain_health.headers


def test_the_bucket_refills_at_the_configured_rate() -> None:
    clock = ManualClock()
    limiter = TokenBucketLimiter(60, clock=clock)  # one request a second
    assert all(limiter.hit("k").allowed for _ in range(60))
    denied = limiter.hit("k")
    clock.advance(0.5)
    still_denied = limiter.hit("k")
    clock.advance(0.5)
    allowed = limiter.hit("k")
    assert not denied.allowed and denied.retry_after == 1
    assert not still_denied.allowed
    assert allowed.allowed and allowed.remaining == 0
    clock.advance(3600)
    rested = limiter.hit("k")
    assert rested.remaining == 59  # an idle caller gets the full allowance back, no more


def test_a_clock_stepping_back_does_not_drain_the_allowance() -> None:
    clock = ManualClock()
    limiter = TokenBucketLimiter(10, clock=clock)
    limiter.hit("k")
    clock.advance(-120)
    assert limiter.hit("k").remaining == 8
