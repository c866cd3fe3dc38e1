"""CloudWatch Embedded Metric Format: what a function prints as EMF becomes metrics in the emulator,
as CloudWatch Logs does in AWS (Powertools `Metrics` prints EMF to stdout).

`sys.stdout` is wrapped by a switch: what a thread prints inside `capture()` is kept for the function's
log (as Lambda sends stdout to CloudWatch Logs, not to anyone's terminal); other writes pass through.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_local = threading.local()


class _CaptureSwitch:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        buffer: list[str] | None = getattr(_local, "buffer", None)
        if buffer is not None:
            buffer.append(text)
            return len(text)
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


_lock = threading.Lock()
_users = 0


def _ensure_switch() -> None:
    # Re-checked at every capture: something else (pytest's capture, a CLI) may have replaced sys.stdout.
    with _lock:
        if _users and not isinstance(sys.stdout, _CaptureSwitch):
            sys.stdout = _CaptureSwitch(sys.stdout)


def install() -> None:
    global _users
    with _lock:
        _users += 1
    _ensure_switch()


def uninstall() -> None:
    global _users
    with _lock:
        _users = max(0, _users - 1)
        if _users == 0 and isinstance(sys.stdout, _CaptureSwitch):
            sys.stdout = sys.stdout.stream


@contextmanager
def capture() -> Iterator[list[str]]:
    """Lines this thread prints within the block (kept here instead of printed)."""
    _ensure_switch()
    chunks: list[str] = []
    previous = getattr(_local, "buffer", None)
    _local.buffer = chunks
    lines: list[str] = []
    try:
        yield lines
    finally:
        _local.buffer = previous
        lines.extend("".join(chunks).splitlines())


def metric_data(line: str) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, MetricDatum) pairs of one EMF log line; [] for any other line."""
    if '"_aws"' not in line:
        return []
    try:
        document = json.loads(line)
        directives = document["_aws"]["CloudWatchMetrics"]
    except (ValueError, KeyError, TypeError):
        return []
    stamp = document["_aws"].get("Timestamp")
    when = dt.datetime.fromtimestamp(stamp / 1000, dt.UTC) if isinstance(stamp, (int, float)) else None
    out = []
    for directive in directives:
        namespace = directive.get("Namespace", "aws-embedded-metrics")
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = [
                {"Name": name, "Value": str(document[name])} for name in dimension_set if name in document
            ]
            for metric in directive.get("Metrics", []):
                value = document.get(metric["Name"])
                values = value if isinstance(value, list) else [value]
                datum: dict[str, Any] = {
                    "MetricName": metric["Name"],
                    "Dimensions": dimensions,
                    "Values": [float(v) for v in values if isinstance(v, (int, float))],
                }
                if metric.get("Unit"):
                    datum["Unit"] = metric["Unit"]
                if when is not None:
                    datum["Timestamp"] = when
                if datum["Values"]:
                    out.append((namespace, datum))
    return out
