"""Secret storage (env, encrypted local store, vault) and the redaction that keeps credentials out of logs,
reprs and exception messages."""

from __future__ import annotations

import io
import json
import logging
import pickle
import stat

import pytest
from cryptography.fernet import Fernet

from canonry import ops
from canonry.errors import CanonryError, ErrorClass
from canonry.runtime import Credential
from canonry.secrets import (
    SecretNotFound,
    SecretStoreError,
    delete_secret,
    install_redaction,
    parse_reference,
    redaction_filter,
    register_secret,
    resolve_secret,
    store_file,
    store_secret,
)
from canonry.warehouse import PROJECT_ROOT, connect


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_local_store_is_encrypted_private_and_atomic(data_dir, tmp_path):
    value = "lc-secret-value-0123456789"
    store_secret("local:hubspot-acme", value)
    assert resolve_secret("local:hubspot-acme") == value
    path = store_file()
    assert path.is_relative_to(data_dir) and _mode(path) == 0o600
    assert value.encode() not in path.read_bytes()
    key = tmp_path / "keys" / "master.key"
    assert key.exists() and _mode(key) == 0o600
    assert not key.is_relative_to(PROJECT_ROOT) and not key.is_relative_to(data_dir)
    store_secret("local:hubspot-acme", value + "-rotated")  # overwrite
    assert resolve_secret("local:hubspot-acme") == value + "-rotated"
    assert list(path.parent.glob("*.tmp")) == []  # the temporary file was renamed into place
    assert delete_secret("local:hubspot-acme") is True
    with pytest.raises(SecretNotFound) as caught:
        resolve_secret("local:hubspot-acme")
    assert "canonry secret set hubspot-acme" in caught.value.hint


def test_the_key_file_must_live_outside_the_repo_and_data_dir(data_dir, monkeypatch):
    for inside, where in ((data_dir / "master.key", "the data directory"),
                          (PROJECT_ROOT / "canonry-test-master.key", "the repository")):
        monkeypatch.setenv("CANONRY_KEY_FILE", str(inside))
        with pytest.raises(SecretStoreError) as caught:
            store_secret("local:x", "some-secret-value")
        assert where in caught.value.reason and "CANONRY_KEY_FILE" in caught.value.hint
        assert not inside.exists()


def test_a_key_file_readable_by_others_is_refused(data_dir, tmp_path, monkeypatch):
    key = tmp_path / "loose.key"
    key.write_bytes(Fernet.generate_key())
    key.chmod(0o644)
    monkeypatch.setenv("CANONRY_KEY_FILE", str(key))
    with pytest.raises(SecretStoreError) as caught:
        store_secret("local:x", "some-secret-value")
    assert "readable by others" in caught.value.reason and caught.value.hint == f"chmod 600 {key}"


def test_master_key_from_environment_and_a_changed_key(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CANONRY_MASTER_KEY", Fernet.generate_key().decode())
    store_secret("local:x", "value-under-key-one")
    assert resolve_secret("local:x") == "value-under-key-one"
    assert not (tmp_path / "keys" / "master.key").exists()
    monkeypatch.setenv("CANONRY_MASTER_KEY", Fernet.generate_key().decode())
    with pytest.raises(SecretStoreError) as caught:
        resolve_secret("local:x")
    assert "master key changed" in caught.value.reason
    monkeypatch.setenv("CANONRY_MASTER_KEY", "not-a-fernet-key")
    with pytest.raises(SecretStoreError) as bad:
        resolve_secret("local:x")
    assert "not a valid Fernet key" in bad.value.reason and "not-a-fernet-key" not in str(bad.value)


def test_environment_references(data_dir, monkeypatch):
    monkeypatch.setenv("CANONRY_TEST_KEY", "env-secret-value-xyz")
    assert resolve_secret("env:CANONRY_TEST_KEY") == "env-secret-value-xyz"
    monkeypatch.delenv("CANONRY_TEST_KEY")
    with pytest.raises(SecretNotFound) as missing:
        resolve_secret("env:CANONRY_TEST_KEY")
    assert "CANONRY_TEST_KEY is not set" in missing.value.reason
    with pytest.raises(SecretNotFound) as read_only:
        store_secret("env:CANONRY_TEST_KEY", "x-value-123")
    assert "read-only" in read_only.value.reason


def test_vault_references_need_the_optional_extra(data_dir, monkeypatch):
    assert parse_reference("vault:kv/canonry/hubspot-acme") == ("vault", "kv/canonry/hubspot-acme")
    assert parse_reference("vault:kv/canonry/hubspot-acme#token") == ("vault", "kv/canonry/hubspot-acme#token")
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:1")
    for operation in (lambda: resolve_secret("vault:kv/canonry/hubspot-acme"),
                      lambda: store_secret("vault:kv/canonry/hubspot-acme", "v-value-123")):
        with pytest.raises(SecretStoreError) as caught:
            operation()
        assert "hvac" in caught.value.reason and "canonry[vault]" in caught.value.hint


def test_something_that_is_not_a_reference_is_never_echoed(data_dir):
    with pytest.raises(SecretNotFound) as caught:
        resolve_secret("pat-na1-0000-raw-token-pasted")
    assert "pat-na1" not in str(caught.value) and "not a secret reference" in caught.value.reason
    with pytest.raises(SecretNotFound):
        resolve_secret("local:bad name with spaces")


def test_one_filter_redacts_every_logger_message_argument_and_traceback():
    secret = "tok-redaction-test-4f1c9e"
    register_secret(secret)
    early = logging.getLogger("canonry.test.early")
    install_redaction()
    late = logging.getLogger("canonry.test.late.child")  # created after installation
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # a handler attached later, without the filter
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    for logger in (early, late):
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        early.warning("token is %s", secret)
        late.info(f"inline {secret}")
        late.debug("dict %s", {"Authorization": f"Bearer {secret}"})
        try:
            raise ValueError(f"bad token {secret}")
        except ValueError:
            late.exception("failed")
    finally:
        for logger in (early, late):
            logger.removeHandler(handler)
    text = stream.getvalue()
    assert secret not in text
    assert text.count("***") == 4 and "ValueError: bad token ***" in text
    assert redaction_filter() in early.filters and redaction_filter() in late.filters


def test_credential_repr_is_masked_and_it_cannot_be_serialised():
    secret = "cred-value-9a8b7c6d5e"
    credential = Credential("api_key", "env:X", lambda: secret)
    assert secret not in repr(credential) and secret not in str(credential) and secret not in f"{credential}"
    assert "***" in repr(credential)
    with pytest.raises(TypeError):
        pickle.dumps(credential)
    assert credential.value() == secret


def test_error_messages_and_ops_rows_are_redacted(data_dir):
    secret = "tok-in-error-message-77aa"
    register_secret(secret)
    error = CanonryError(ErrorClass.AUTH_EXPIRED, f"rejected {secret}", connection_id="c1")
    assert secret not in str(error) and secret not in error.detail
    ops.append("sync_errors", [{"run_id": "r1", "connection_id": "c1", "message": f"echo {secret}",
                                "error_class": "auth_expired"}])
    conn = connect()
    try:
        rows = conn.execute("select message from ops.sync_errors").fetchall()
    finally:
        conn.close()
    assert rows == [("echo ***",)]
    assert secret not in json.dumps(rows)
