"""A separate process for the cross-process refresh test: N threads ask for the access token at once.

Usage: python -m tests.oauth_worker <connections file> <connection id> <go file> <threads>
Prints one JSON line: the sha256 of every value obtained (never the values) and any errors.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from pathlib import Path

from canonry.config import parse_file
from canonry.oauth_tokens import oauth_credential


def main() -> None:
    config, connection_id, go_file, threads = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    model, problems, _, _ = parse_file(Path(config))  # schema only: importing the source (dlt) is slow
    assert model is not None and not problems, problems
    connection = model.get(connection_id)
    auth = connection.auth
    credential = oauth_credential(connection.id, connection.provider, auth.secret, auth.client_secret,
                                  client_id=auth.client_id)
    results: list[str] = []
    errors: list[str] = []
    Path(str(go_file) + f".ready-{threading.get_native_id()}").touch()
    while not go_file.exists():
        time.sleep(0.005)

    def ask() -> None:
        try:
            results.append(hashlib.sha256(credential.value().encode()).hexdigest())
        except Exception as exc:  # noqa: BLE001 — reported to the test
            errors.append(f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps({"hashes": results, "errors": errors}))


if __name__ == "__main__":
    main()
