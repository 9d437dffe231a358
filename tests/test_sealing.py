"""Secrets at rest: webhook secrets and buyers' push credentials are stored sealed under
a key outside the database, rows from before are sealed at the next start, and a server
with another key refuses to start."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from adcp_agent import cli
from adcp_agent.config import Settings
from adcp_agent.sealing import (
    KEY_FILE,
    PREFIX,
    SecretBox,
    SecretKeyError,
    is_sealed,
    key_id_of,
    new_key,
)
from adcp_agent.server import prepare
from adcp_agent.services import tenants
from adcp_agent.services.webhook_signing import verify_signature
from adcp_agent.state import AppState
from tests.media_helpers import guaranteed, non_guaranteed
from tests.notifications_support import Clock, Receiver, publisher

LOCAL = {"allow_private_webhooks": ["127.0.0.1/32"]}
TOKEN, CREDENTIALS = "echo-token-0123456789", "c" * 40


async def _raw(state: AppState, sql: str) -> list[tuple]:
    async with state.db.engine.connect() as conn:
        return [tuple(row) for row in (await conn.execute(text(sql))).all()]


async def _insert_webhook(state: AppState, webhook_id: str, secret: str) -> None:
    async with state.db.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO webhook_endpoints (webhook_id, tenant_id, name, url, secret, "
                "secret_hint, events, created_at) VALUES (:id, 'demo', '', "
                "'https://example.com/h', :secret, 'whsec_xxxx', '[]', CURRENT_TIMESTAMP)"
            ),
            {"id": webhook_id, "secret": secret},
        )


async def test_secrets_are_stored_sealed(tmp_path: Path) -> None:
    async with publisher(tmp_path, LOCAL) as pub:
        hook = await pub.api.request(
            "POST", f"/tenants/{pub.tenant_id}/webhooks", json={"url": "http://127.0.0.1:9/h"}
        )
        secret = hook.json()["secret"]
        args = guaranteed()
        args["push_notification_config"] = {
            "url": "http://127.0.0.1:9/push",
            "token": TOKEN,
            "authentication": {"schemes": ["Bearer"], "credentials": CREDENTIALS},
        }
        booked = await pub.mcp("create_media_buy", args)
        box = pub.api.state.secrets
        [(stored_secret,)] = await _raw(pub.api.state, "SELECT secret FROM webhook_endpoints")
        [(stored_token, stored_credentials)] = await _raw(
            pub.api.state, "SELECT token, auth_credentials FROM push_notification_configs"
        )
    assert booked["status"] == "submitted"
    for stored, plain in ((stored_secret, secret), (stored_token, TOKEN),
                          (stored_credentials, CREDENTIALS)):  # fmt: skip
        assert stored.startswith(f"{PREFIX}{box.key_id}:") and plain not in stored
        assert box.open(stored) == plain
    # Each value is sealed with its own random IV: equal secrets do not look equal.
    assert box.seal(TOKEN) != box.seal(TOKEN)


async def test_secrets_stored_before_sealing_are_sealed_at_the_next_start(
    prepared_state: AppState,
) -> None:
    state = prepared_state
    async with state.db.engine.begin() as conn:
        await conn.execute(text("DELETE FROM installation_settings"))  # as before 0019
        await conn.execute(
            text("UPDATE tenants SET features = :features WHERE tenant_id = 'demo'"),
            {"features": '{"slack_webhook_url": "https://hooks.slack.com/services/T/B/OLD"}'},
        )
    await _insert_webhook(state, "wh_old", "whsec_plain_old_secret")
    await prepare(state)
    await prepare(state)  # (once sealed, a restart leaves them)
    [(stored,)] = await _raw(state, "SELECT secret FROM webhook_endpoints")
    tenant = await tenants.get_tenant(state.db, "demo")
    assert tenant is not None
    slack = tenant.features["slack_webhook_url"]
    assert is_sealed(slack) and state.secrets.open(slack).endswith("/T/B/OLD")
    [(key_id,)] = await _raw(state, "SELECT value FROM installation_settings")
    assert stored.startswith(PREFIX) and "whsec_plain_old_secret" not in stored
    assert state.secrets.open(stored) == "whsec_plain_old_secret"
    assert key_id == state.secrets.key_id


async def test_a_server_with_another_key_refuses_to_start(prepared_state: AppState) -> None:
    other_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    settings = prepared_state.settings.model_copy(update={"secret_key": SecretStr(other_key)})
    stranger = AppState.from_settings(settings)
    try:
        with pytest.raises(SecretKeyError) as refused:
            await prepare(stranger)
    finally:
        await stranger.db.dispose()
    assert prepared_state.secrets.key_id in str(refused.value)
    assert "ADCP_AGENT_SECRET_KEY" in str(refused.value)
    # The same data dir (its key file) starts as before.
    await prepare(prepared_state)


def test_the_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    first = SecretBox.from_settings(Settings(data_dir=tmp_path))
    again = SecretBox.from_settings(Settings(data_dir=tmp_path))
    assert first.key_id == again.key_id
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert again.open(first.seal("s3cret")) == "s3cret"
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]  # no temp file left

    given = base64.urlsafe_b64encode(os.urandom(32)).decode()
    elsewhere = tmp_path / "elsewhere"
    from_env = SecretBox.from_settings(Settings(data_dir=elsewhere, secret_key=given))
    assert from_env.key_id != first.key_id and not elsewhere.exists()
    with pytest.raises(SecretKeyError) as foreign:
        from_env.open(first.seal("s3cret"))
    assert first.key_id in str(foreign.value)
    assert from_env.open("legacy-plain") == "legacy-plain"  # stored before sealing
    with pytest.raises(SecretKeyError) as bad:
        SecretBox.from_settings(Settings(data_dir=elsewhere, secret_key="not-a-key"))
    assert "not a Fernet key" in str(bad.value)


async def test_a_tenants_ad_server_key_is_stored_sealed_and_reaches_the_adapter(
    prepared_state: AppState,
) -> None:
    state = prepared_state
    kevel = {
        "ad_server": "kevel",
        "adapter_config": {"network_id": 1, "api_key": "kevel-key-0123456789"},
    }
    tenant = await tenants.create_tenant(
        state.db,
        state.registry,
        name="Kevel pub",
        subdomain="kevelpub",
        features={"slack_webhook_url": "https://hooks.slack.com/services/T/B/SECRET"},
        box=state.secrets,
        **kevel,
    )
    [row] = await _raw(
        state,
        f"SELECT adapter_config, features FROM tenants WHERE tenant_id = '{tenant.tenant_id}'",
    )
    assert "kevel-key" not in str(row) and "SECRET" not in str(row)
    adapter = state.adapters.get(tenant, "kevel")
    assert adapter.config.api_key == "kevel-key-0123456789"  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):  # never stored in the clear for want of a key
        await tenants.create_tenant(
            state.db, state.registry, name="Keyless", subdomain="keyless", **kevel
        )


async def test_a_rotated_key_reseals_every_secret_at_the_next_start(
    prepared_state: AppState, capsys: pytest.CaptureFixture[str]
) -> None:
    """``rotate-secret-key`` puts a new key first in the key file; the next start seals
    every stored secret with it and records it; a server holding only the old key
    then refuses to start, one holding the new key starts."""
    state = prepared_state
    old = state.secrets
    await _insert_webhook(state, "wh_rot", old.seal("whsec_rotated_secret"))
    data_dir = state.settings.data_dir
    assert cli.main(["rotate-secret-key", "--data-dir", str(data_dir)]) == 0
    said = capsys.readouterr().out
    keys = (data_dir / KEY_FILE).read_text().split()
    assert len(keys) == 2 and key_id_of(keys[1].encode()) == old.key_id
    new_id = key_id_of(keys[0].encode())
    assert new_id in said and old.key_id in said

    rotated = AppState.from_settings(state.settings)
    try:
        await prepare(rotated)
        [(stored,)] = await _raw(rotated, "SELECT secret FROM webhook_endpoints")
        [(recorded,)] = await _raw(rotated, "SELECT value FROM installation_settings")
    finally:
        await rotated.db.dispose()
    assert stored.startswith(f"{PREFIX}{new_id}:") and recorded == new_id
    assert SecretBox([keys[0].encode()], "new").open(stored) == "whsec_rotated_secret"
    # A server not yet restarted seals with the old key meanwhile: the next start with
    # both keys seals that again, so the old key can go.
    await _insert_webhook(state, "wh_late", old.seal("whsec_late_secret"))
    restarted = AppState.from_settings(state.settings)
    try:
        await prepare(restarted)
        late = await _raw(restarted, "SELECT secret FROM webhook_endpoints ORDER BY webhook_id")
    finally:
        await restarted.db.dispose()
    assert all(secret.startswith(f"{PREFIX}{new_id}:") for (secret,) in late)
    for only, starts in ((keys[1], False), (keys[0], True)):
        settings = state.settings.model_copy(update={"secret_key": SecretStr(only)})
        server = AppState.from_settings(settings)
        try:
            if starts:
                await prepare(server)
            else:
                with pytest.raises(SecretKeyError, match=new_id):
                    await prepare(server)
        finally:
            await server.db.dispose()


async def test_a_secret_this_server_cannot_open_is_retried_not_dead_lettered(
    tmp_path: Path,
) -> None:
    """A server left with an old key after a rotation cannot sign: the delivery waits
    for a retry (by a server holding the key, or this one restarted) instead of being
    given up, and goes out once the key is there."""
    async with Receiver() as receiver, publisher(tmp_path, LOCAL) as pub:
        hook = await pub.api.request(
            "POST", f"/tenants/{pub.tenant_id}/webhooks", json={"url": receiver.url()}
        )
        booked = await pub.mcp("create_media_buy", non_guaranteed(budget=1000))
        [event] = await pub.events()
        state = pub.api.state
        holder = state.secrets
        state._secrets = SecretBox([new_key().encode()], "a stale server")  # noqa: SLF001
        clock = Clock()
        worker = pub.worker(clock)
        try:
            await worker.run_once()
            [waiting] = await pub.deliveries(event.event_id)
            state._secrets = holder  # noqa: SLF001 - restarted with the key
            clock.advance(3600)
            await worker.run_once()
        finally:
            await worker.stop()
        [sent] = await pub.deliveries(event.event_id)
    assert booked["status"] == "completed" and hook.status_code == 201
    assert waiting.status == "pending" and "SecretKeyError" in (waiting.last_error or "")
    assert sent.status == "delivered" and len(receiver.requests) == 1
    [request] = receiver.requests  # signed at the worker's (advanced) time
    signed_at = int(clock.now.timestamp())
    assert verify_signature(hook.json()["secret"], request.headers, request.body, now=signed_at)
