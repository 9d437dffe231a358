"""A buyer's governance agent for the tests: a FastMCP server with ``check_governance``,
served over HTTPS on 127.0.0.1 (a certificate from a CA made for the test run, which
the sales agent under test is told to trust), answering what each plan is scripted to
and recording every call it gets with the credential it came with."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastmcp import FastMCP
from fastmcp.server.dependencies import get_http_headers

from tests.support import free_port

CREDENTIALS = "gov-token-" + "x" * 32


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@functools.cache
def pki() -> tuple[Path, Path, Path]:
    """(certificate, key, CA certificate) for 127.0.0.1, made once a test run."""
    import ipaddress

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("adcp-agent test CA"))
        .issuer_name(_name("adcp-agent test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    where = Path(tempfile.mkdtemp(prefix="adcp-gov-pki-"))
    (where / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (where / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (where / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return where / "cert.pem", where / "key.pem", where / "ca.pem"


def trusting_context() -> ssl.SSLContext:
    """What the sales agent under test verifies governance agents with: the test CA."""
    return ssl.create_default_context(cafile=str(pki()[2]))


def approved(
    context: str,
    *,
    expires_in: dt.timedelta = dt.timedelta(hours=1),
    next_check: dt.datetime | None = None,
) -> dict[str, Any]:
    expires = dt.datetime.now(dt.UTC) + expires_in
    out = {
        "verdict": "approved",
        "explanation": "Within the plan's budget and markets.",
        "governance_context": context,
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
    }
    if next_check is not None:
        out["next_check"] = next_check.isoformat().replace("+00:00", "Z")
    return out


@dataclass
class GovernanceAgent:
    """Scripted by plan: ``verdicts[plan_id]`` is the answer (a dict, or a list taken in
    turn); unknown plans get PLAN_NOT_FOUND. ``calls`` holds every check received, with
    the ``authorization`` header it came with."""

    verdicts: dict[str, Any] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    # Answer in plain JSON without sessions (stateless) instead of event streams.
    plain_json: bool = False
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/mcp"

    def _app(self) -> Any:
        mcp = FastMCP("test-governance-agent")
        agent = self

        @mcp.tool(name="check_governance")
        async def check_governance(
            plan_id: str,
            caller: str,
            purchase_type: str | None = None,
            phase: str | None = None,
            governance_context: str | None = None,
            planned_delivery: dict[str, Any] | None = None,
            modification_summary: str | None = None,
            delivery_metrics: dict[str, Any] | None = None,
        ) -> dict[str, Any]:
            headers = get_http_headers(include_all=True)
            agent.calls.append(
                {
                    "plan_id": plan_id,
                    "caller": caller,
                    "purchase_type": purchase_type,
                    "phase": phase,
                    "governance_context": governance_context,
                    "planned_delivery": planned_delivery,
                    "modification_summary": modification_summary,
                    "delivery_metrics": delivery_metrics,
                    "authorization": headers.get("authorization"),
                }
            )
            scripted = agent.verdicts.get(plan_id)
            if isinstance(scripted, list):
                scripted = scripted.pop(0) if len(scripted) > 1 else scripted[0]
            if scripted is None:
                return {"errors": [{"code": "PLAN_NOT_FOUND", "message": f"No plan {plan_id}."}]}
            return {"check_id": f"chk_{len(agent.calls)}", "plan_id": plan_id, **scripted}

        if self.plain_json:
            return mcp.http_app(path="/mcp", json_response=True, stateless_http=True)
        return mcp.http_app(path="/mcp")

    def start(self) -> GovernanceAgent:
        cert, key, _ca = pki()
        config = uvicorn.Config(
            self._app(),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve()),  # type: ignore[union-attr]
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url, verify=trusting_context(), timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the test governance agent did not start")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
