"""One TLS context a process for outbound HTTPS.

httpx builds a fresh ``ssl.SSLContext`` for every client, loading the whole CA bundle
(~18 ms of CPU each time). The webhook worker makes one client, but the Kevel and Triton
adapters open one for each session with the ad server, so every booking paid it again.
The context only holds the trusted CAs and settings, never a connection or credential,
and is safe to share; with ``trust_env`` it honours ``SSL_CERT_FILE``/``SSL_CERT_DIR``
as read when first used.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_tls(*, trust_env: bool = True) -> ssl.SSLContext:
    """The shared context httpx would have built (``verify=True``)."""
    return httpx.create_ssl_context(trust_env=trust_env)
