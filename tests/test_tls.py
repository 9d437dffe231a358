"""Outbound HTTPS shares one TLS context a process (``adcp_agent.tls``) and still
verifies: the ad-server adapters' sessions and the webhook worker use it, and it
requires a certificate that matches the host."""

from __future__ import annotations

import ssl
from pathlib import Path

from adcp_agent_adapters._http import HttpAdapterConfig, HttpApi, HttpSettings

from adcp_agent.config import Settings
from adcp_agent.services.outbox_worker import OutboxWorker
from adcp_agent.state import AppState
from adcp_agent.tls import client_tls


def _context_of(client: object) -> ssl.SSLContext:
    return client._transport._pool._ssl_context  # type: ignore[attr-defined]


def test_the_shared_context_verifies_certificates_and_host_names() -> None:
    context = client_tls()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the CA bundle is loaded
    assert client_tls() is context


async def test_every_adapter_session_uses_the_one_context() -> None:
    settings = HttpSettings(
        ad_server="kevel",
        label="Kevel",
        base_url="https://api.kevel.example",
        headers={},
        config=HttpAdapterConfig(api_key="k"),
    )
    api = HttpApi(lambda: settings)
    contexts = []
    for _ in range(2):
        async with api.session() as session:
            contexts.append(_context_of(session._client))
    assert contexts == [client_tls(), client_tls()]


async def test_the_webhook_worker_uses_a_shared_context_without_the_environment(
    tmp_path: Path,
) -> None:
    state = AppState.from_settings(Settings(data_dir=tmp_path))
    try:
        worker = OutboxWorker(state)
        assert _context_of(worker.client) is client_tls(trust_env=False)
        await worker.client.aclose()
    finally:
        await state.db.dispose()
