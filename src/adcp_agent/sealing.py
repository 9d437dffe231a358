"""Secrets the server has to use again are stored sealed: webhook signing secrets, the
token and credentials buyers give in ``push_notification_config``, and the
secret-named entries of a tenant's ``adapter_config`` and ``features`` (ad-server API
keys, the Slack webhook URL). Unlike access tokens and API keys (only hashes are
kept), these must be read back to sign or authenticate a delivery, so the database
holds them encrypted (Fernet: AES-128-CBC with an HMAC-SHA256 tag) under a key it
never sees: a dump or a read replica shows no secret.

The keys are ``ADCP_AGENT_SECRET_KEY`` (Fernet keys, comma-separated), or else
``secret.key`` in the data dir (one a line), made on first use (mode 0600). The first
seals; the others only open what they sealed. Servers sharing one PostgreSQL need the
same keys; the database records which key sealed its secrets (``key_id``, a hash of
it): a server that does not hold it refuses to start, and one whose sealing key is
newer re-seals everything and records its own (``services.sealed_secrets.adopt_key``:
that is how a key is rotated, ``adcp-agent rotate-secret-key``)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

    from adcp_agent.config import Settings

PREFIX = "enc:v1:"  # then the key id, ":" and the Fernet token
KEY_FILE = "secret.key"


class SecretKeyError(RuntimeError):
    """The sealing key is unusable or is not the one that sealed the database's secrets."""


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def key_id_of(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


class SecretBox:
    """A keyring: the first key seals; every key opens what it sealed (a retired key
    stays until every server has restarted with the new one, ``adopt_key``)."""

    def __init__(self, keys: Sequence[bytes], source: str) -> None:
        for key in keys:
            try:
                valid = len(base64.urlsafe_b64decode(key)) == 32
            except (binascii.Error, ValueError):
                valid = False
            if not valid:
                raise SecretKeyError(
                    f"A secret key from {source} is not a Fernet key (32 bytes, url-safe "
                    'base64): make one with python -c "import base64, os; '
                    'print(base64.urlsafe_b64encode(os.urandom(32)).decode())".'
                )
        if not keys:
            raise SecretKeyError(f"{source} holds no secret key.")
        self._keys = {key_id_of(k): k for k in reversed(keys)}  # (the first wins a clash)
        self.source = source
        self.key_id = key_id_of(keys[0])  # the sealing key
        self._fernets: dict[str, Fernet] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.secret_key is not None:
            keys = settings.secret_key.get_secret_value().split(",")
            return cls([k.strip().encode() for k in keys], "ADCP_AGENT_SECRET_KEY")
        path = settings.data_dir / KEY_FILE
        return cls(_key_file(path), str(path))

    def holds(self, key_id: str) -> bool:
        return key_id in self._keys

    @property
    def retired(self) -> int:
        """How many keys only open (an unfinished rotation while more than none)."""
        return len(self._keys) - 1

    def _box(self, key_id: str) -> Fernet:
        fernet = self._fernets.get(key_id)
        if fernet is None:
            from cryptography.fernet import Fernet  # ~35 ms: only once a secret is used

            fernet = self._fernets[key_id] = Fernet(self._keys[key_id])
        return fernet

    def seal(self, plain: str) -> str:
        token = self._box(self.key_id).encrypt(plain.encode()).decode()
        return f"{PREFIX}{self.key_id}:{token}"

    def seal_optional(self, plain: str | None) -> str | None:
        return None if plain is None else self.seal(plain)

    def open(self, stored: str) -> str:
        """The secret in ``stored``; a value stored before sealing came in (no prefix) is
        returned as it is."""
        if not is_sealed(stored):
            return stored
        key_id, _, token = stored[len(PREFIX) :].partition(":")
        if key_id not in self._keys:
            raise SecretKeyError(
                f"A secret was sealed with key {key_id}, which this server ({self.source}) "
                "does not hold."
            )
        from cryptography.fernet import InvalidToken

        try:
            return self._box(key_id).decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretKeyError(f"A sealed secret does not open with key {key_id}.") from exc

    def reseal(self, stored: str) -> str:
        """``stored`` sealed with the sealing key (opened with whichever sealed it)."""
        if is_sealed(stored) and stored[len(PREFIX) :].startswith(self.key_id + ":"):
            return stored
        return self.seal(self.open(stored))


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def _key_file(path: Path) -> list[bytes]:
    """The keys in ``path`` (one a line, the sealing key first), a new one made there
    first if there is none. Two processes starting on one data dir agree: the file
    appears complete (a hard link of a written temp file) or not at all, and the one
    that loses the race reads the winner's."""
    try:
        return _lines(path.read_bytes())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _written(path, new_key().encode() + b"\n")
    try:
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return _lines(path.read_bytes())


def _lines(data: bytes) -> list[bytes]:
    return [line.strip() for line in data.splitlines() if line.strip()]


def _written(path: Path, data: bytes) -> Path:
    """A new file beside ``path`` holding ``data`` (mode 0600, on disk)."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return temp


def rotate_key_file(path: Path) -> str:
    """Put a new sealing key first in ``path``, keeping the keys there to open what they
    sealed (atomically: a rename over the file). The new key's id."""
    key = new_key()
    temp = _written(path, b"\n".join([key.encode(), *_lines(path.read_bytes())]) + b"\n")
    os.replace(temp, path)
    return key_id_of(key.encode())


def seal_named(value: Any, box: SecretBox, secret: Callable[[str], bool]) -> Any:
    """A copy of a JSON ``value`` with every string under a key ``secret`` names (at any
    depth) sealed with the sealing key — a tenant's ad-server credentials, its Slack
    webhook URL; one sealed with it already is kept as it is (``reseal``)."""
    if isinstance(value, dict):
        return {
            k: box.reseal(v)
            if secret(str(k)) and isinstance(v, str)
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
