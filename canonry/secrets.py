"""Secret storage and log redaction. Credentials are not data.

References (what the connections file holds — never a value):

* `env:NAME` — an environment variable (read-only for canonry);
* `local:NAME` — the encrypted local store: a JSON map name -> Fernet ciphertext under
  `<data dir>/secrets/store.json` (0600), keyed by `CANONRY_MASTER_KEY` or by a key generated once into a
  0600 key file (`CANONRY_KEY_FILE`, default `~/.config/canonry/master.key`) that must live outside the
  repository and the data/warehouse directory;
* `vault:MOUNT/PATH[#KEY]` — HashiCorp Vault KV v2 through `hvac` (optional extra `canonry[vault]`;
  `VAULT_ADDR`, `VAULT_TOKEN`), key `value` unless `#KEY` names another.

Every value resolved or stored is registered with the redaction filter (`RedactingFilter`), which
`install_redaction()` puts on every logger (and on the root handlers): registered values are masked in
log messages, their arguments, exception tracebacks and stack info. `redact()` is what the ops tables,
`CanonryError` messages and the CLI pass their text through.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import threading
import time
from pathlib import Path

from filelock import FileLock

_KNOWN_SECRETS: set[str] = set()
_KNOWN_LOCK = threading.Lock()
MASK = "***"
MIN_SECRET_LENGTH = 6
REFERENCE = re.compile(r"^(?P<scheme>env|local|vault):(?P<name>[A-Za-z0-9_./\-]+(?:#[A-Za-z0-9_.\-]+)?)$")
BACKENDS = ("env", "local", "vault")


class SecretNotFound(Exception):
    """A reference that does not resolve (or cannot be written). The message names the reference only."""

    def __init__(self, reference: str, reason: str, hint: str) -> None:
        super().__init__(f"{reference}: {reason}")
        self.reference, self.reason, self.hint = reference, reason, hint


class SecretStoreError(SecretNotFound):
    """The store itself is unusable (bad key, unsafe key file, missing optional backend)."""


# -- redaction ---------------------------------------------------------------------------------------

def register_secret(value: str | None) -> None:
    """Make the redaction filter mask this value wherever it appears."""
    if value and isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
        with _KNOWN_LOCK:
            _KNOWN_SECRETS.add(value)


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***`."""
    if not _KNOWN_SECRETS or not isinstance(text, str):
        return text
    with _KNOWN_LOCK:
        secrets_now = sorted(_KNOWN_SECRETS, key=len, reverse=True)
    for value in secrets_now:
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Masks every registered secret in a log record: message with its arguments, traceback, stack."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if not _KNOWN_SECRETS or getattr(record, "_canonry_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw parts, redacted
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._canonry_redacted = True
        return True


_FILTER = RedactingFilter()


def install_redaction() -> None:
    """Put the one filter on the root logger, its handlers, every existing logger and every future one."""
    root = logging.getLogger()
    if _FILTER not in root.filters:
        root.addFilter(_FILTER)
    for handler in root.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)
            for handler in logger.handlers:
                if _FILTER not in handler.filters:
                    handler.addFilter(_FILTER)
    original = logging.getLoggerClass()
    if not getattr(original, "_canonry_redacting", False):
        class RedactingLogger(original):  # type: ignore[misc, valid-type]
            _canonry_redacting = True

            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                self.addFilter(_FILTER)

        logging.setLoggerClass(RedactingLogger)


def redaction_filter() -> logging.Filter:
    """The filter itself (to attach to a handler created later, e.g. a log file)."""
    return _FILTER


# -- the local encrypted store -----------------------------------------------------------------------

def key_file() -> Path:
    """The master key file: outside the repo and the warehouse directory."""
    return Path(os.environ.get("CANONRY_KEY_FILE", Path.home() / ".config" / "canonry" / "master.key"))


def store_file() -> Path:
    from canonry.warehouse import data_dir

    return Path(os.environ.get("CANONRY_SECRET_STORE", data_dir() / "secrets" / "store.json"))


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
        return True
    except ValueError:
        return False


def _check_key_location(path: Path) -> None:
    from canonry.warehouse import PROJECT_ROOT, data_dir, warehouse_path

    for directory, what in ((PROJECT_ROOT, "the repository"), (data_dir(), "the data directory"),
                            (warehouse_path().parent, "the warehouse directory")):
        if _inside(path, directory):
            raise SecretStoreError(f"key file {path}", f"the master key file is inside {what}",
                                   "set CANONRY_KEY_FILE to a path outside the repository and the data "
                                   "directory (default ~/.config/canonry/master.key), or set CANONRY_MASTER_KEY")


def _read_key_file(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretStoreError(f"key file {path}", f"the master key file is readable by others (mode {mode:o})",
                               f"chmod 600 {path}")
    for _ in range(50):  # a concurrent first run may still be writing it
        key = path.read_bytes().strip()
        if key:
            return key
        time.sleep(0.02)
    raise SecretStoreError(f"key file {path}", "the master key file is empty", "delete it to generate a new key "
                           "(secrets stored with the old key become unreadable)")


def master_key() -> bytes:
    """`CANONRY_MASTER_KEY`, or the key file (generated once, 0600, outside the repo and data dir)."""
    from cryptography.fernet import Fernet

    key = os.environ.get("CANONRY_MASTER_KEY")
    if key:
        return key.strip().encode()
    path = key_file()
    _check_key_location(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return _read_key_file(path)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
    return _read_key_file(path)


def _fernet():
    from cryptography.fernet import Fernet

    key = master_key()
    register_secret(key.decode(errors="replace"))
    try:
        return Fernet(key)
    except ValueError:
        raise SecretStoreError("CANONRY_MASTER_KEY", "the master key is not a valid Fernet key",
                               "generate one with `python -c 'from cryptography.fernet import Fernet; "
                               "print(Fernet.generate_key().decode())'`") from None


def _write_private(path: Path, text: str) -> None:
    """Write atomically (temporary file + rename), 0600 from the first byte."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class LocalStore:
    """An encrypted JSON map name -> ciphertext; writes are atomic and serialised by a file lock."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or store_file()
        self.lock = FileLock(str(self.path) + ".lock")

    def _read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        return json.loads(self.path.read_text() or "{}")

    def names(self) -> list[str]:
        return sorted(self._read())

    def get(self, name: str) -> str | None:
        from cryptography.fernet import InvalidToken

        token = self._read().get(name)
        if token is None:
            return None
        try:
            value = _fernet().decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretStoreError(f"local:{name}", "cannot decrypt: the master key changed since it was stored",
                                   "restore the old key (CANONRY_MASTER_KEY / CANONRY_KEY_FILE) or store the "
                                   "secret again") from None
        register_secret(value)
        return value

    def put(self, name: str, value: str) -> None:
        register_secret(value)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        ciphertext = _fernet().encrypt(value.encode()).decode()
        with self.lock:
            data = self._read()
            data[name] = ciphertext
            _write_private(self.path, json.dumps(data, indent=0, sort_keys=True))

    def delete(self, name: str) -> bool:
        if not self.path.exists():
            return False
        with self.lock:
            data = self._read()
            found = data.pop(name, None) is not None
            if found:
                _write_private(self.path, json.dumps(data, indent=0, sort_keys=True))
            return found


# -- Vault ---------------------------------------------------------------------------------------------

def _hvac_client(reference: str):
    try:
        import hvac
    except ImportError:
        raise SecretStoreError(reference, "the vault backend needs the optional `hvac` package",
                               "pip install 'canonry[vault]' (or use env: / local: references)") from None
    if not os.environ.get("VAULT_ADDR"):
        raise SecretNotFound(reference, "VAULT_ADDR is not set", "export VAULT_ADDR and VAULT_TOKEN")
    return hvac.Client(url=os.environ.get("VAULT_ADDR"), token=os.environ.get("VAULT_TOKEN"))


def _vault_parts(name: str) -> tuple[str, str, str]:
    mount, _, secret_path = name.partition("/")
    key = "value"
    if "#" in secret_path:
        secret_path, key = secret_path.split("#", 1)
    return mount, secret_path, key


def _vault_read(reference: str, name: str) -> str:
    mount, secret_path, key = _vault_parts(name)
    client = _hvac_client(reference)
    try:
        data = client.secrets.kv.v2.read_secret_version(path=secret_path, mount_point=mount,
                                                         raise_on_deleted_version=True)["data"]["data"]
    except Exception as exc:  # hvac raises many types; the message names the path, never a value
        raise SecretNotFound(reference, f"vault read failed: {type(exc).__name__}",
                             "check VAULT_ADDR, VAULT_TOKEN and the path") from None
    if key not in data:
        raise SecretNotFound(reference, f"vault secret has no key {key!r}", "write the value under that key")
    return str(data[key])


def _vault_write(reference: str, name: str, value: str | None) -> None:
    mount, secret_path, key = _vault_parts(name)
    client = _hvac_client(reference)
    try:
        if value is None:
            client.secrets.kv.v2.delete_metadata_and_all_versions(path=secret_path, mount_point=mount)
        else:
            client.secrets.kv.v2.create_or_update_secret(path=secret_path, secret={key: value}, mount_point=mount)
    except Exception as exc:
        raise SecretNotFound(reference, f"vault write failed: {type(exc).__name__}",
                             "check VAULT_TOKEN's policy allows writing this path") from None


# -- references ----------------------------------------------------------------------------------------

def parse_reference(reference: str) -> tuple[str, str]:
    """(`backend`, `name`) of a reference; raises SecretNotFound when it is not one."""
    match = REFERENCE.match(reference or "")
    if not match:
        scheme = (reference or "").partition(":")[0]
        if scheme in BACKENDS:
            raise SecretNotFound(redact_reference(reference), "malformed secret reference",
                                 "names may use letters, digits and _ . / - (vault: add #key for another key)")
        raise SecretNotFound(redact_reference(reference), "not a secret reference",
                             "write env:NAME, local:NAME or vault:MOUNT/PATH — never the secret itself")
    return match.group("scheme"), match.group("name")


def redact_reference(text: str | None) -> str:
    """What to print for a value in a secret field: itself when it is a reference, else a mask."""
    if text is None:
        return ""
    return text if REFERENCE.match(text) else MASK


def resolve_secret(reference: str) -> str:
    """The value behind a reference; raises SecretNotFound with a hint."""
    scheme, name = parse_reference(reference)
    if scheme == "env":
        value = os.environ.get(name)
        if not value:
            raise SecretNotFound(reference, f"environment variable {name} is not set",
                                 f"export {name}=… before running, or use a local: reference with "
                                 "`canonry secret set`")
    elif scheme == "local":
        value = LocalStore().get(name)
        if value is None:
            raise SecretNotFound(reference, f"no secret named {name!r} in the local store",
                                 f"store it with `canonry secret set {name}` (or `canonry connect` for OAuth)")
    else:
        value = _vault_read(reference, name)
    register_secret(value)
    return value


def store_secret(reference: str, value: str) -> None:
    """Write a value behind a `local:` or `vault:` reference (env: variables are the operator's)."""
    scheme, name = parse_reference(reference)
    register_secret(value)
    if scheme == "local":
        LocalStore().put(name, value)
    elif scheme == "vault":
        _vault_write(reference, name, value)
    else:
        raise SecretNotFound(reference, "env: references are read-only for canonry",
                             "use a local: or vault: reference for secrets canonry writes (OAuth tokens)")


def delete_secret(reference: str) -> bool:
    """Delete what a `local:` or `vault:` reference points at; True if something was deleted."""
    scheme, name = parse_reference(reference)
    if scheme == "local":
        return LocalStore().delete(name)
    if scheme == "vault":
        _vault_write(reference, name, None)
        return True
    raise SecretNotFound(reference, "env: references are read-only for canonry", f"unset {name} yourself")


def writable(reference: str) -> bool:
    try:
        return parse_reference(reference)[0] in ("local", "vault")
    except SecretNotFound:
        return False
