"""One connection's "credential dead" flag, shared by every session and thread of the connection.

When the provider rejects the credential (`auth_expired`: a 401), retrying with the same credential only
adds rejections — and a provider counts them (some lock an integration out after a few). With one reader
per connection the first 401 ended the run; with objects read concurrently, the other readers must stop
too: a session holding a set `CredentialHalt` refuses to send (same error class, no request) until the
credential is renewed (`clear`, after a refresh). Requests already on the wire when the 401 arrived get
their own answer; nothing new is sent.
"""

from __future__ import annotations

import threading

from canonry.errors import CanonryError, ErrorClass


class CredentialHalt:
    """Set by the first request of a connection whose credential is rejected; checked before every send."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._error: CanonryError | None = None

    @property
    def dead(self) -> bool:
        return self._error is not None

    def set(self, error: CanonryError) -> None:
        with self._lock:
            if self._error is None:
                self._error = error

    def clear(self) -> None:
        """The credential was renewed (a refresh): requests may go again."""
        with self._lock:
            self._error = None

    def check(self, endpoint: str) -> None:
        """Raise `auth_expired` without sending when another request of the connection was rejected."""
        error = self._error
        if error is None:
            return
        raise CanonryError(ErrorClass.AUTH_EXPIRED,
                           f"not sent: the provider rejected this connection's credential on {error.endpoint}",
                           provider=error.provider, connection_id=error.connection_id, endpoint=endpoint,
                           hint=error.hint)
