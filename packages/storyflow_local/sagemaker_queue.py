"""An async endpoint's queue: how many inferences run at once, and what waits for what.

AWS sends at most `InitialInstanceCount * MaxConcurrentInvocationsPerInstance` requests to an async
endpoint's model containers at a time (the per-instance default here: 4); the rest wait in its queue,
taken in arrival order. What SageMaker does around a container's invocation (reading the request from
`InputLocation`, writing the answer to S3, publishing the notification) holds no container slot, so here
it runs outside the slots: the next request's input is read while the container is still busy, and the
container is given the next request as soon as it answers. Never more than the slots reach the container.
(The local model server is one process for all the endpoint's instances.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

DEFAULT_PER_INSTANCE = 4
_AROUND = 2  # workers beyond the slots: reading the next inputs, writing the last answers


def endpoint_slots(async_config: dict[str, Any], variants: list[dict[str, Any]]) -> int:
    """instances * MaxConcurrentInvocationsPerInstance of an endpoint config (at least 1)."""
    per_instance = (async_config.get("ClientConfig") or {}).get("MaxConcurrentInvocationsPerInstance")
    instances = sum(int(v.get("InitialInstanceCount") or 1) for v in variants) or 1
    return max(1, instances * int(per_instance or DEFAULT_PER_INSTANCE))


class EndpointQueue:
    def __init__(self, endpoint_name: str, slots: int) -> None:
        self.slots = slots
        self._slots = threading.BoundedSemaphore(slots)
        self._pool = ThreadPoolExecutor(max_workers=slots + _AROUND, thread_name_prefix=f"sm-{endpoint_name}")

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        self._pool.submit(fn, *args)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Held while a request is inside the model container (FIFO among the waiting)."""
        with self._slots:
            yield

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
