"""Structured logs: `canonry --log-format json …` (or `CANONRY_LOG_FORMAT=json`) writes one JSON object per
line on stderr for every `canonry.*` log record, with the run id, connection, provider and trace id of the
run it belongs to. Messages pass the redaction filter (`canonry.secrets`) before they are formatted.

`text` (the default) leaves logging as it is: warnings on stderr, the commands' own output on stdout.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from canonry.errors import ConfigError

FORMATS = ("text", "json")
CONTEXT_FIELDS = ("run_id", "connection_id", "provider")
_context: ContextVar[dict[str, str]] = ContextVar("canonry_log_context", default={})  # noqa: B039 - never mutated


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Fields added to every log record emitted inside the block (this thread or task)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Puts the run's fields and the current trace id on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        from canonry.tracing import trace_id

        context = _context.get()
        for name in CONTEXT_FIELDS:
            setattr(record, name, context.get(name))
        record.trace_id = trace_id()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
                **{name: getattr(record, name, None) for name in (*CONTEXT_FIELDS, "trace_id")}}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str)


_handler: logging.Handler | None = None


def configure(log_format: str | None = None, level: int = logging.INFO) -> str:
    """Install the JSON handler on the `canonry` logger (idempotent); returns the format in effect."""
    global _handler
    from canonry.secrets import redaction_filter

    chosen = (log_format or os.environ.get("CANONRY_LOG_FORMAT") or "text").strip().lower()
    if chosen not in FORMATS:
        raise ConfigError(f"unknown log format {chosen!r} (from --log-format or CANONRY_LOG_FORMAT)",
                          hint=f"use one of {', '.join(FORMATS)}")
    logger = logging.getLogger("canonry")
    if _handler is not None:
        logger.removeHandler(_handler)
        _handler = None
    if chosen == "json":
        _handler = logging.StreamHandler(sys.stderr)
        _handler.addFilter(redaction_filter())  # first: the message is masked before anything reads it
        _handler.addFilter(ContextFilter())
        _handler.setFormatter(JsonFormatter())
        logger.addHandler(_handler)
        logger.setLevel(level)
        logger.propagate = False
    else:
        logger.propagate = True
    return chosen
