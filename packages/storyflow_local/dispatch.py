"""Background work of the local cloud: asynchronous deliveries (Lambda `Event` invokes, SNS, EventBridge,
S3 notifications) and the periodic loops of the adapters, all stopped together."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

log = logging.getLogger("storyflow_local")


class Dispatcher:
    def __init__(self, workers: int = 64) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="local-async")
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._timers: set[threading.Timer] = set()
        self._futures: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def submit(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any] | None:
        """Run `fn` in the background; an exception is logged (as AWS would, asynchronously)."""
        if self.stopping.is_set():
            return None

        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("async %s failed", what)
                return None

        try:
            future = self._executor.submit(run)
        except RuntimeError:  # shut down
            return None
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._futures.discard(future)

    def later(self, seconds: float, what: str, fn: Callable[..., Any], *args: Any) -> None:
        """Submit `fn` after `seconds` (unless stopping by then)."""

        def fire() -> None:
            with self._lock:
                self._timers.discard(timer)
            self.submit(what, fn, *args)

        timer = threading.Timer(seconds, fire)
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()

    def loop(self, name: str, interval: float, tick: Callable[[], None]) -> None:
        """Call `tick` every `interval` seconds in a daemon thread until stop()."""

        def run() -> None:
            while not self.stopping.wait(interval):
                try:
                    tick()
                except Exception:
                    log.exception("%s tick failed", name)

        thread = threading.Thread(target=run, name=f"local-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loops and timers; let deliveries under way finish (for up to `timeout`)."""
        self.stopping.set()
        with self._lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            pending = list(self._futures)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
        wait([f for f in pending if not f.cancelled()], timeout=timeout)
