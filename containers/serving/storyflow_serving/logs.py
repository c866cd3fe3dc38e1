"""Structured logs: one JSON object per line (``time``, ``level``, ``logger``, ``message`` + fields).

Fields come from ``extra=``: ``log.info("invocation", extra={"input_uri": ..., "duration_ms": 12})``
writes ``{"time":..,"level":"INFO","logger":..,"message":"invocation","input_uri":..,"duration_ms":12}``.
CloudWatch Logs Insights (SageMaker endpoint logs) parses such lines into fields by itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import IO, Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_") and name not in doc:
                doc[name] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


def configure(level: str | int = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Route every logger through one JSON-lines handler on ``stream`` (default stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
