"""Wait for a positive signal: poll with exponential backoff until a probe answers, or fail saying what was
awaited and what was last seen. Tests never sleep a fixed time and then assert that nothing happened."""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic, sleep
from typing import TypeVar

T = TypeVar("T")

FIRST_DELAY = 0.05
MAX_DELAY = 1.0


def wait_until(
    probe: Callable[[], T],
    timeout: float,
    what: str,
    *,
    until: Callable[[T], object] = bool,
    ignore: tuple[type[Exception], ...] = (),
    first_delay: float = FIRST_DELAY,
    max_delay: float = MAX_DELAY,
) -> T:
    """Call `probe` until `until(value)` holds (default: the value is truthy) and return that value; back
    off from `first_delay` to `max_delay` (doubling) between calls. Exceptions of the `ignore` types count
    as "not yet" (the last one is reported); any other propagates. After `timeout` seconds: AssertionError
    naming `what` and the last value seen (so probe what you wait on, and let `until` judge it)."""
    deadline = monotonic() + timeout
    delay = first_delay
    calls = 0
    last: object = None
    while True:
        calls += 1
        try:
            value = probe()
        except ignore as error:
            last = error
        else:
            if until(value):
                return value
            last = value
        remaining = deadline - monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"timed out after {timeout:g}s ({calls} tries) waiting for {what}; last value: {last!r}"
            )
        sleep(min(delay, remaining))
        delay = min(delay * 2, max_delay)
