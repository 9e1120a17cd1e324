"""Secret storage and log redaction. Credentials are not data.

References: `env:NAME` (environment variable), `local:NAME` (an encrypted local store, Fernet, key from
`CANONRY_MASTER_KEY` or a 0600 key file outside the repo and the warehouse directory), `vault:PATH`
(HashiCorp Vault KV through `hvac`, optional extra). Every value resolved or stored is registered with
the redaction filter, which every logger carries.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from filelock import FileLock

_KNOWN_SECRETS: set[str] = set()
_KNOWN_LOCK = threading.Lock()
MASK = "***"


class SecretNotFound(Exception):
    def __init__(self, reference: str, reason: str, hint: str) -> None:
        super().__init__(f"{reference}: {reason}")
        self.reference, self.reason, self.hint = reference, reason, hint


def register_secret(value: str | None) -> None:
    """Make the redaction filter mask this value wherever it appears."""
    if value and len(value) >= 6:
        with _KNOWN_LOCK:
            _KNOWN_SECRETS.add(value)


def redact(text: str) -> str:
    with _KNOWN_LOCK:
        secrets_now = sorted(_KNOWN_SECRETS, key=len, reverse=True)
    for value in secrets_now:
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Masks every registered secret in log records (message and arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _KNOWN_SECRETS:
            record.msg = redact(str(record.msg))
            if record.args:
                args = record.args if isinstance(record.args, tuple) else (record.args,)
                record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        return True


_FILTER = RedactingFilter()


def install_redaction() -> None:
    """Attach the filter to the root logger's handlers and to every logger that exists or is created."""
    root = logging.getLogger()
    if _FILTER not in root.filters:
        root.addFilter(_FILTER)
    for handler in root.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger) and _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    original = logging.Logger.manager.loggerClass or logging.Logger
    if not getattr(original, "_canonry_redacting", False):
        class RedactingLogger(original):  # type: ignore[misc, valid-type]
            _canonry_redacting = True

            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                self.addFilter(_FILTER)

        logging.setLoggerClass(RedactingLogger)


def key_file() -> Path:
    """The master key file: outside the repo and the warehouse directory."""
    return Path(os.environ.get("CANONRY_KEY_FILE", Path.home() / ".config" / "canonry" / "master.key"))


def store_file() -> Path:
    from canonry.warehouse import data_dir

    return Path(os.environ.get("CANONRY_SECRET_STORE", data_dir() / "secrets" / "store.json"))


def _fernet():
    from cryptography.fernet import Fernet

    key = os.environ.get("CANONRY_MASTER_KEY")
    if not key:
        path = key_file()
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
        key = path.read_text().strip()
    return Fernet(key.encode() if isinstance(key, str) else key)


class LocalStore:
    """An encrypted JSON map name -> ciphertext; writes are atomic and serialised by a file lock."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or store_file()
        self.lock = FileLock(str(self.path) + ".lock")

    def _read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        return json.loads(self.path.read_text() or "{}")

    def get(self, name: str) -> str | None:
        token = self._read().get(name)
        if token is None:
            return None
        value = _fernet().decrypt(token.encode()).decode()
        register_secret(value)
        return value

    def put(self, name: str, value: str) -> None:
        register_secret(value)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            data = self._read()
            data[name] = _fernet().encrypt(value.encode()).decode()
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
            os.replace(tmp, self.path)

    def delete(self, name: str) -> bool:
        with self.lock:
            data = self._read()
            found = data.pop(name, None) is not None
            if found:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(data))
                os.replace(tmp, self.path)
            return found


def resolve_secret(reference: str) -> str:
    """The value behind a reference; raises SecretNotFound with a hint."""
    scheme, _, name = reference.partition(":")
    if not name:
        raise SecretNotFound(reference, "not a secret reference",
                             "write env:NAME, local:NAME or vault:PATH — never the secret itself")
    if scheme == "env":
        value = os.environ.get(name)
        if not value:
            raise SecretNotFound(reference, f"environment variable {name} is not set",
                                 f"export {name}=… before running, or store it with `canonry secret set`")
    elif scheme == "local":
        value = LocalStore().get(name)
        if value is None:
            raise SecretNotFound(reference, f"no secret named {name!r} in the local store",
                                 f"store it with `canonry secret set {name}` or `canonry connect`")
    elif scheme == "vault":
        value = _vault_read(reference, name)
    else:
        raise SecretNotFound(reference, f"unknown secret backend {scheme!r}", "use env:, local: or vault:")
    register_secret(value)
    return value


def _vault_read(reference: str, path: str) -> str:
    try:
        import hvac
    except ImportError:
        raise SecretNotFound(reference, "the vault backend needs the optional `hvac` package",
                             "pip install 'canonry[vault]'") from None
    mount, _, secret_path = path.partition("/")
    key = "value"
    if "#" in secret_path:
        secret_path, key = secret_path.split("#", 1)
    client = hvac.Client(url=os.environ.get("VAULT_ADDR"), token=os.environ.get("VAULT_TOKEN"))
    try:
        data = client.secrets.kv.v2.read_secret_version(path=secret_path, mount_point=mount)["data"]["data"]
    except Exception as exc:  # hvac raises many types; the message names the path, never a value
        raise SecretNotFound(reference, f"vault read failed: {type(exc).__name__}",
                             "check VAULT_ADDR, VAULT_TOKEN and the path") from None
    if key not in data:
        raise SecretNotFound(reference, f"vault secret has no key {key!r}", "write the value under that key")
    return str(data[key])


def store_secret(reference: str, value: str) -> None:
    """Write a value behind a `local:` reference (the only backend we write to)."""
    scheme, _, name = reference.partition(":")
    if scheme != "local":
        raise SecretNotFound(reference, "only local: references can be written by canonry",
                             "set env: variables yourself; write vault: secrets with vault")
    LocalStore().put(name, value)
