"""Secrets the server has to use again are stored sealed: webhook signing secrets, the
token and credentials buyers give in ``push_notification_config``, and the
secret-named entries of a tenant's ``adapter_config`` and ``features`` (ad-server API
keys, the Slack webhook URL). Unlike access
tokens and API keys (only hashes are kept), these must be read back to sign or
authenticate a delivery, so the database holds them encrypted (Fernet: AES-128-CBC with
an HMAC-SHA256 tag) under a key it never sees: a dump or a read replica shows no
secret.

The key is ``ADCP_AGENT_SECRET_KEY`` (a Fernet key), or else ``secret.key`` in the
data dir, made on first use (mode 0600). Servers sharing one PostgreSQL need the same
key; the database records which key sealed its secrets (``key_id``, a hash of it) and a
server with another key refuses to start (``adopt_key``)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

    from adcp_agent.config import Settings

PREFIX = "enc:v1:"  # then the key id, ":" and the Fernet token
KEY_FILE = "secret.key"


class SecretKeyError(RuntimeError):
    """The sealing key is unusable or is not the one that sealed the database's secrets."""


class SecretBox:
    def __init__(self, key: bytes, source: str) -> None:
        try:
            valid = len(base64.urlsafe_b64decode(key)) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise SecretKeyError(
                f"The secret key from {source} is not a Fernet key (32 bytes, url-safe "
                'base64): make one with python -c "import base64, os; '
                'print(base64.urlsafe_b64encode(os.urandom(32)).decode())".'
            )
        self._key = key
        self.source = source
        self.key_id = hashlib.sha256(key).hexdigest()[:16]
        self._fernet: Fernet | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.secret_key is not None:
            return cls(settings.secret_key.get_secret_value().encode(), "ADCP_AGENT_SECRET_KEY")
        path = settings.data_dir / KEY_FILE
        return cls(_key_file(path), str(path))

    def _box(self) -> Fernet:
        if self._fernet is None:
            from cryptography.fernet import Fernet  # ~35 ms: only once a secret is used

            self._fernet = Fernet(self._key)
        return self._fernet

    def seal(self, plain: str) -> str:
        token = self._box().encrypt(plain.encode()).decode()
        return f"{PREFIX}{self.key_id}:{token}"

    def seal_optional(self, plain: str | None) -> str | None:
        return None if plain is None else self.seal(plain)

    def open(self, stored: str) -> str:
        """The secret in ``stored``; a value stored before sealing came in (no prefix) is
        returned as it is."""
        if not is_sealed(stored):
            return stored
        key_id, _, token = stored[len(PREFIX) :].partition(":")
        if key_id != self.key_id:
            raise SecretKeyError(
                f"A secret was sealed with key {key_id}, not this server's key "
                f"{self.key_id} ({self.source})."
            )
        from cryptography.fernet import InvalidToken

        try:
            return self._box().decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretKeyError(f"A sealed secret does not open with key {self.key_id}.") from exc


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def _key_file(path: Path) -> bytes:
    """The key in ``path``, made there first if there is none. Two processes starting
    on one data dir agree: the file appears complete (a hard link of a written temp
    file) or not at all, and the one that loses the race reads the winner's."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(6)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(base64.urlsafe_b64encode(os.urandom(32)) + b"\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path.read_bytes().strip()


def seal_named(value: Any, box: SecretBox, secret: Callable[[str], bool]) -> Any:
    """A copy of a JSON ``value`` with every string under a key ``secret`` names (at any
    depth) sealed: a tenant's ad-server credentials, its Slack webhook URL."""
    if isinstance(value, dict):
        return {
            k: box.seal(v)
            if secret(str(k)) and isinstance(v, str) and not is_sealed(v)
            else seal_named(v, box, secret)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [seal_named(v, box, secret) for v in value]
    return value


def open_all(value: Any, box: SecretBox) -> Any:
    """A copy of a JSON ``value`` with every sealed string opened."""
    if isinstance(value, dict):
        return {k: open_all(v, box) for k, v in value.items()}
    if isinstance(value, list):
        return [open_all(v, box) for v in value]
    return box.open(value) if is_sealed(value) else value


def names_secrets(value: Any, secret: Callable[[str], bool]) -> bool:
    """Whether a JSON ``value`` holds a string under a key ``secret`` names."""
    if isinstance(value, dict):
        return any(
            (secret(str(k)) and isinstance(v, str)) or names_secrets(v, secret)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return any(names_secrets(v, secret) for v in value)
    return False
