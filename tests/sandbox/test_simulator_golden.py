"""The simulators answer byte for byte what they answered when the golden files were recorded.

Each provider sandbox (seed 7, small scale) is asked every route it serves (tests/sandbox/scripts.py);
each answer's status, the headers a client reads and a SHA-256 of its body are compared with
tests/sandbox/golden/<slug>.json (small bodies are kept whole, so a difference is readable). What changes
from run to run by design (issued tokens, request ids, the time of a write, rate-limit counters that move
with the clock) is masked before hashing; everything else, key order and spacing included, must match.

Refactoring a simulator must not change this; a deliberate behaviour change re-records the files with
`CANONRY_RECORD_GOLDEN=1 .venv/bin/python -m pytest tests/sandbox/test_simulator_golden.py -n 0` and shows
the difference in review."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path

import pytest
import requests

from canonry.sandbox import DEFAULT_TOKENS, start_sandbox
from tests.sandbox.scripts import SCRIPTS, TIGHT_LIMITS, basic, bearer

GOLDEN = Path(__file__).parent / "golden"
RECORD = os.environ.get("CANONRY_RECORD_GOLDEN") == "1"
FULL_BODY_MAX = 300
# Header values that move with the clock or the request count; their presence is still compared.
VOLATILE_HEADERS = {"date", "server", "content-length", "retry-after", "x-ratelimit-reset",
                    "x-ratelimit-remaining", "x-hubspot-ratelimit-remaining", "x-daily-requests-left",
                    "x-rate-limit-reset", "x-rate-limit-remaining"}
MASKS: tuple[tuple[re.Pattern[bytes], bytes], ...] = (
    # issued per run: tokens, codes, request ids, signatures
    (re.compile(rb'"(access_token|refresh_token|correlationId|requestId|signature|issued_at|id_token)"'
                rb':"[^"]*"'), rb'"\1":"<masked>"'),
    (re.compile(rb"\b[a-z]{2,4}-(at|rt)-[A-Za-z0-9_-]{32}"), b"<token>"),
    (re.compile(rb"code=[A-Za-z0-9_-]{32}"), b"code=<code>"),
    (re.compile(rb'"syncToken":"[0-9a-f]{20}"'), b'"syncToken":"<masked>"'),
    (re.compile(rb"127\.0\.0\.1:\d+"), b"127.0.0.1:<port>"),
    # the time of a write (base records are dated 2024-2025)
    (re.compile(rb"20(2[6-9]|[3-9]\d)-\d\d-\d\d([T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?)?"), b"<now>"),
    (re.compile(rb"\b(17[6-9]\d|1[89]\d\d)\d{9}\b"), b"<now-ms>"),
    (re.compile(rb"\b(17[6-9]|1[89]\d)\d{7}\.\d+"), b"<now-s>"),
    (re.compile(rb"(?<!\d)([01]\d|2[0-3])[0-5]\d[0-5]\d\d{6}(?!\d)"), b"<hhmmssffffff>"),   # "updated <stamp>"
)

# Limits the script itself must not reach (Lever's bucket refills with the clock).
MAIN_OPTIONS: dict[str, dict] = {"lever": {"burst": 10_000}, "workable": {"rate_limit": 10_000}}
# One request per provider that its rate limit (tight, see TIGHT_LIMITS) answers once spent.
LIMITED: dict[str, tuple[str, str, dict]] = {
    "greenhouse": ("GET", "/v3/jobs", {}),
    "lever": ("GET", "/v1/stages", {"headers": basic(DEFAULT_TOKENS["lever"])}),
    "ashby": ("POST", "/department.list", {"json": {}, "headers": basic(DEFAULT_TOKENS["ashby"])}),
    "hubspot": ("GET", "/crm/v3/schemas", {"headers": bearer(DEFAULT_TOKENS["hubspot"])}),
    "salesforce": ("GET", "/services/data/v62.0/limits", {"headers": bearer(DEFAULT_TOKENS["salesforce"])}),
    "pipedrive": ("GET", "/api/v2/stages", {"headers": {"x-api-token": DEFAULT_TOKENS["pipedrive"]}}),
    "workable": ("GET", "/spi/v3/stages", {"headers": bearer(DEFAULT_TOKENS["workable"])}),
}


# Opaque cursors that carry the time a pass started: compared decoded (and masked), not as bytes.
CURSOR = re.compile(rb'"(nextCursor|next_cursor|next)":"([A-Za-z0-9_-]{16,})"')


def _decoded_cursor(match: re.Match[bytes]) -> bytes:
    raw = match.group(2)
    try:
        decoded = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
        json.loads(decoded)
    except ValueError:
        return match.group(0)
    return b'"' + match.group(1) + b'":"decoded:' + mask(decoded).replace(b'"', b"'") + b'"'


def mask(body: bytes) -> bytes:
    body = CURSOR.sub(_decoded_cursor, body)
    for pattern, replacement in MASKS:
        body = pattern.sub(replacement, body)
    return body


def snapshot(response: requests.Response) -> dict:
    body = mask(response.content)
    headers = {k.lower(): ("*" if k.lower() in VOLATILE_HEADERS else mask(v.encode()).decode())
               for k, v in response.headers.items()}
    entry: dict = {"status": response.status_code, "headers": dict(sorted(headers.items())),
                   "sha256": hashlib.sha256(body).hexdigest()[:16], "bytes": len(body)}
    if len(body) <= FULL_BODY_MAX:
        entry["body"] = body.decode(errors="replace")
    return entry


def greenhouse_token(base_url: str) -> str:
    from canonry.sandbox import greenhouse as gh

    return requests.post(base_url + "/token", data={"grant_type": "client_credentials"},
                         headers=basic(gh.DEFAULT_CLIENT_ID, gh.DEFAULT_CLIENT_SECRET), timeout=10).json()["access_token"]


def record(slug: str) -> dict[str, dict]:
    answers: dict[str, dict] = {}
    server = start_sandbox(slug, seed=7, scale=30, **MAIN_OPTIONS.get(slug, {}))
    try:
        with requests.Session() as session:
            def call(name: str, method: str, path: str, **kwargs) -> requests.Response:
                assert name not in answers, f"two requests named {name!r}"
                response = session.request(method, server.base_url + path, timeout=10, **kwargs)
                answers[name] = snapshot(response)
                return response

            SCRIPTS[slug](call)
            # The control side: one change of every object, then every object's truth.
            objects = sorted(session.get(server.base_url + "/_sandbox/info", timeout=10).json()["objects"])
            for name in objects:
                call(f"mutate.{name}", "POST", "/_sandbox/mutate",
                     json={"object": name, "seed": 3, "update": 2, "delete": 1, "create": 1})
            for name in objects:
                call(f"truth.{name}", "GET", f"/_sandbox/truth/{name}")
            method, path, kwargs = LIMITED[slug]
            if slug == "greenhouse":
                kwargs = {"headers": bearer(greenhouse_token(server.base_url))}
            for fault, plan in (("fault.storm_429", {"storm_429": 1}), ("fault.server_error", {"error_rate": 1.0})):
                session.post(server.base_url + "/_sandbox/faults", json=plan, timeout=10)
                call(fault, method, path, **kwargs)
    finally:
        server.stop()
    server = start_sandbox(slug, seed=7, scale=30, **TIGHT_LIMITS[slug])
    try:
        if slug == "greenhouse":
            kwargs = {"headers": bearer(greenhouse_token(server.base_url))}
        for n in range(3):
            answers[f"limited.{n}"] = snapshot(requests.request(method, server.base_url + path, timeout=10,
                                                                **kwargs))
    finally:
        server.stop()
    return answers


@pytest.mark.parametrize("slug", sorted(SCRIPTS))
def test_simulator_answers_match_the_golden_file(slug):
    answers = record(slug)
    path = GOLDEN / f"{slug}.json"
    if RECORD:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n")
    golden = json.loads(path.read_text())
    assert list(answers) == list(golden), "the script's requests changed: re-record the golden file"
    different = {name: {"now": answers[name], "golden": golden[name]} for name in golden
                 if answers[name] != golden[name]}
    assert not different, json.dumps(different, indent=1)[:6000]
