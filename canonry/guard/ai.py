"""Guarded AI query generation: prompt from the catalog, ask a chat model, guard the answer, repair.

The model is any OpenAI-compatible endpoint (``POST {CANONRY_LLM_URL}/chat/completions``) configured by
environment. Its answer is checked with the same guard as a human query; a rejected answer is sent back
with the violations for up to ``max_repairs`` repairs, and only a query that passes is returned.
For SOQL the loop is stricter than a human's check: a selectivity warning (no selective filter on a large
object, a leading-wildcard LIKE, a filter made only of negations) counts as a rejection, so it is sent back
for repair and, when the repairs run out, the question is refused.
The API key is read from ``CANONRY_LLM_API_KEY`` and used only in the Authorization header: it is never
printed, logged, or included in an exception message.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from canonry.guard.verdict import Verdict

ENV_URL, ENV_MODEL, ENV_KEY = "CANONRY_LLM_URL", "CANONRY_LLM_MODEL", "CANONRY_LLM_API_KEY"
DEFAULT_MAX_REPAIRS = 3


class LlmNotConfigured(RuntimeError):
    """No chat endpoint configured: the message says which environment variables to set."""


class LlmError(RuntimeError):
    """The chat endpoint failed or answered in an unexpected shape."""


@dataclass(frozen=True)
class LlmConfig:
    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)  # never in repr, logs or messages
    timeout: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LlmConfig:
        env = os.environ if env is None else env
        url, model = env.get(ENV_URL, "").strip(), env.get(ENV_MODEL, "").strip()
        if not url:
            raise LlmNotConfigured(
                f"No AI endpoint is configured. Set {ENV_URL} to an OpenAI-compatible base URL "
                f"(e.g. http://127.0.0.1:8000/v1), {ENV_MODEL} to the model name, and {ENV_KEY} if the "
                "endpoint needs a key."
            )
        if not model:
            raise LlmNotConfigured(f"{ENV_URL} is set but {ENV_MODEL} is not: set it to the model name.")
        return cls(url=url, model=model, api_key=env.get(ENV_KEY) or None)


class ChatClient:
    """Minimal OpenAI-compatible chat client (``requests``)."""

    def __init__(self, config: LlmConfig, session: Any = None) -> None:
        import requests

        self.config = config
        self.session = session or requests.Session()

    @property
    def endpoint(self) -> str:
        return f"{self.config.url.rstrip('/')}/chat/completions"

    def complete(self, messages: list[dict[str, str]]) -> str:
        import requests

        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        body = {"model": self.config.model, "messages": messages, "temperature": 0}
        try:
            response = self.session.post(self.endpoint, json=body, headers=headers, timeout=self.config.timeout)
        except requests.RequestException as error:  # message names the URL only, never headers
            raise LlmError(f"could not reach {self.endpoint}: {error.__class__.__name__}") from None
        if response.status_code >= 400:
            raise LlmError(f"{self.endpoint} answered HTTP {response.status_code}")
        try:
            return str(response.json()["choices"][0]["message"]["content"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise LlmError(f"{self.endpoint} answered without choices[0].message.content") from None


# ---------------------------------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------------------------------

SYSTEM_PROMPTS: dict[str, str] = {
    "soql": (
        "You write Salesforce SOQL for analysts. Answer with exactly one SOQL SELECT statement and "
        "nothing else (no prose, no markdown). Use only the objects, fields and relationships listed. "
        "Rules: filter LARGE objects with =, IN, <, > or LIKE 'abc%' on an indexed field; avoid "
        "leading-wildcard LIKE and filters made only of !=, NOT IN, NOT LIKE or EXCLUDES; always end "
        "with LIMIT (at most {max_limit}); FIELDS(ALL) needs LIMIT 200; OFFSET at most 2000; at most 5 "
        "relationship levels; never FOR UPDATE, FOR VIEW, FOR REFERENCE, UPDATE TRACKING or UPDATE VIEWSTAT; "
        "semi-joins (Id IN (SELECT ...)) only in the main WHERE, at most two, never nested; no comments. "
        "Date literals (TODAY, LAST_N_DAYS:30, THIS_QUARTER) and "
        "datetimes (2024-05-01T00:00:00Z) are unquoted."
    ),
    "sql": (
        "You write {dialect} SQL for analysts over a warehouse. Answer with exactly one read-only SELECT "
        "statement and nothing else (no prose, no markdown). Use only the tables below, always "
        "schema-qualified as canonical.<table>. Name the columns you need (no SELECT *), join with ON "
        "conditions (never a cross join), end with LIMIT (at most {max_limit}). Never use functions or "
        "statements that touch files, the network or settings (read_csv, read_parquet, COPY, ATTACH, "
        "INSTALL, LOAD, PRAGMA, SET). Keep the cost bounded: no recursive CTEs, range()/generate_series() "
        "with constant bounds and at most 1,000,000 values, join on keys, no string_agg/array_agg over "
        "whole large tables."
    ),
}


def soql_schema_text(catalog: Any) -> str:
    return "Salesforce objects:\n" + "\n".join(f"- {line}" for line in catalog.summary_lines())


def sql_schema_text(tables: Mapping[str, tuple[str, ...]]) -> str:
    return "Canonical tables (schema canonical):\n" + "\n".join(
        f"- canonical.{name}({', '.join(columns)})" for name, columns in sorted(tables.items())
    )


def build_messages(kind: str, question: str, schema_text: str, **params: Any) -> list[dict[str, str]]:
    system = SYSTEM_PROMPTS[kind].format(**{"max_limit": 2000, "dialect": "DuckDB", **params})
    return [
        {"role": "system", "content": f"{system}\n\n{schema_text}"},
        {"role": "user", "content": question},
    ]


def repair_message(verdict: Verdict) -> str:
    problems = "\n".join(
        f"- {v.code} ({v.severity}): {v.message}" for v in verdict.violations if v.severity == "error"
    )
    return (
        "The query was rejected by the guard:\n"
        f"{problems}\n"
        "Return a corrected query that fixes every problem. Answer with the query only."
    )


_FENCE_RE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)
_LABEL_RE = re.compile(r"^\s*(?:soql|sql|query)\s*:\s*", re.IGNORECASE)


def extract_query(answer: str) -> str:
    """The query in a model answer: the first fenced block if any, without a label or trailing ';'."""
    match = _FENCE_RE.search(answer)
    text = match.group(1) if match else answer
    text = _LABEL_RE.sub("", text.strip())
    return text.strip().rstrip(";").strip()


# ---------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    query: str
    verdict: Verdict
    guard_ms: float  # the guard check alone
    elapsed_ms: float  # model call + guard check


@dataclass
class AskResult:
    question: str
    kind: str
    attempts: list[Attempt] = field(default_factory=list)
    elapsed_ms: float = 0.0

    @property
    def verdict(self) -> Verdict | None:
        return self.attempts[-1].verdict if self.attempts else None

    @property
    def ok(self) -> bool:
        return bool(self.verdict and self.verdict.passed)

    @property
    def query(self) -> str | None:
        """The query to run (rewritten if the guard rewrote it), or None when no answer passed."""
        return self.verdict.final_query if self.ok and self.verdict else None

    def to_dict(self) -> dict[str, Any]:
        last = self.verdict
        return {
            "ok": self.ok,
            "query": self.query,
            "verdict": last.verdict if last else None,
            "violations": [v.to_dict() for v in last.violations] if last else [],
            "attempts": [{"query": a.query, "verdict": a.verdict.verdict, "codes": a.verdict.codes}
                         for a in self.attempts],
        }


def _strict(kind: str, verdict: Verdict) -> Verdict:
    """AI-written SOQL must be selective: its selectivity warnings are refusals (see rules_soql)."""
    if kind != "soql":
        return verdict
    from canonry.guard.rules_soql import refuse_nonselective

    return refuse_nonselective(verdict)


def ask(
    question: str,
    kind: str,
    guard: Callable[[str], Verdict],
    complete: Callable[[list[dict[str, str]]], str],
    schema_text: str,
    max_repairs: int = DEFAULT_MAX_REPAIRS,
    **prompt_params: Any,
) -> AskResult:
    """Ask for a query, guard it, feed errors back up to ``max_repairs`` times; see :class:`AskResult`."""
    started = time.perf_counter()
    messages = build_messages(kind, question, schema_text, **prompt_params)
    result = AskResult(question, kind)
    for _ in range(max(0, max_repairs) + 1):
        t0 = time.perf_counter()
        answer = complete(messages)
        query = extract_query(answer)
        t1 = time.perf_counter()
        verdict = _strict(kind, guard(query))
        t2 = time.perf_counter()
        result.attempts.append(Attempt(query, verdict, (t2 - t1) * 1000, (t2 - t0) * 1000))
        if verdict.passed:
            break
        messages = [*messages, {"role": "assistant", "content": answer},
                    {"role": "user", "content": repair_message(verdict)}]
    result.elapsed_ms = (time.perf_counter() - started) * 1000
    return result
