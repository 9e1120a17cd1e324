"""API keys: issued per tenant, printed once, stored hashed in `<data dir>/api/keys.json`.

A key reads `cnry_<key id>_<secret>`: the key id (public, 12 hex) finds the entry, the secret (256 random
bits) is checked against `sha256(salt || secret)` with a constant-time compare. A fast hash is enough here:
unlike a password, a 256-bit random secret cannot be guessed from its hash, and a slow hash (scrypt,
argon2) would cost every request tens of milliseconds. The file holds no key, only ids, salts and hashes;
it is rewritten atomically under a file lock, and the server re-reads it when it changes (a revoke takes
effect at the next request).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

from canonry.api.resources import SCOPES
from canonry.warehouse import data_dir

KEY_PATTERN = re.compile(r"^cnry_(?P<key_id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
DEFAULT_RATE_LIMIT = 600  # requests per minute per key
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ApiKeyError(ValueError):
    """A key operation that cannot be done (unknown key id, bad tenant or scope): what, and what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message} — {hint}")


@dataclass
class ApiKey:
    key_id: str
    tenant: str
    scopes: list[str]
    rate_limit: int
    salt: str
    digest: str
    created_at: str
    revoked_at: str | None = None
    label: str = field(default="")

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def keys_file() -> Path:
    return data_dir() / "api" / "keys.json"


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def load_keys(path: Path | None = None) -> dict[str, ApiKey]:
    path = path or keys_file()
    if not path.exists():
        return {}
    entries = json.loads(path.read_text())["keys"]
    return {e["key_id"]: ApiKey(**e) for e in entries}


def _save(keys: dict[str, ApiKey], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"keys": [asdict(k) for k in keys.values()]}, indent=2))
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def _lock(path: Path) -> FileLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock", timeout=30)


def create_key(tenant: str, scopes: list[str] | None = None, rate_limit: int = DEFAULT_RATE_LIMIT,
               label: str = "") -> tuple[str, ApiKey]:
    """(the key string — shown once, never stored — and its stored entry)."""
    if not TENANT_PATTERN.match(tenant):
        raise ApiKeyError(f"tenant {tenant!r} is not a tenant id",
                        "use the `tenant` of a connection in the connections file (letters, digits, _ . -)")
    scopes = sorted(set(scopes or SCOPES))
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ApiKeyError(f"unknown scope(s) {', '.join(sorted(unknown))}", f"scopes are {', '.join(SCOPES)}")
    if rate_limit < 1:
        raise ApiKeyError(f"rate limit {rate_limit} must be at least 1", "requests per minute, e.g. 600")
    key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
    entry = ApiKey(key_id, tenant, scopes, rate_limit, salt, _digest(salt, secret),
                   datetime.now(UTC).isoformat(timespec="seconds"), label=label)
    path = keys_file()
    with _lock(path):
        keys = load_keys(path)
        keys[key_id] = entry
        _save(keys, path)
    return f"cnry_{key_id}_{secret}", entry


def revoke_key(key_id: str) -> ApiKey:
    path = keys_file()
    with _lock(path):
        keys = load_keys(path)
        if key_id not in keys:
            raise ApiKeyError(f"no API key {key_id!r}", "`canonry api keys list` shows the key ids")
        keys[key_id].revoked_at = keys[key_id].revoked_at or datetime.now(UTC).isoformat(timespec="seconds")
        _save(keys, path)
    return keys[key_id]


class KeyRing:
    """The server's view of keys.json, re-read when the file changes (a revoke applies at once)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or keys_file()
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, ApiKey] = {}

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_ino)
        except FileNotFoundError:
            self._stamp, self._keys = None, {}
            return
        if stamp != self._stamp:
            self._keys, self._stamp = load_keys(self.path), stamp

    def verify(self, presented: str) -> ApiKey | None:
        """The active key entry `presented` is, or None."""
        match = KEY_PATTERN.match(presented or "")
        if not match:
            return None
        self._refresh()
        entry = self._keys.get(match["key_id"])
        if entry is None or not entry.active:
            return None
        if not hmac.compare_digest(entry.digest, _digest(entry.salt, match["secret"])):
            return None
        return entry
