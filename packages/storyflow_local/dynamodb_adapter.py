"""DynamoDB item writes made atomic, as in AWS.

moto's `put_item`/`update_item`/`delete_item`/`transact_write_items` read the current item, evaluate
the condition and then write, with nothing held in between; the emulator serves requests on many
threads, so two conditional writes of the same item can both pass their condition. In AWS a
conditional write is atomic (concurrent `/start` calls rely on it to start exactly one task), so
every item write runs under one lock here.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from storyflow_local.context import LocalContext

WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


class DynamoDbAdapter:
    def __init__(self, ctx: LocalContext) -> None:
        self.ctx = ctx
        self.lock = threading.RLock()

    def install(self) -> None:
        from moto.dynamodb.models import DynamoDBBackend

        for name in WRITES:
            original = getattr(DynamoDBBackend, name)
            self.ctx.patches.set(DynamoDBBackend, name, self._serialised(original))

    def _serialised(self, original: Callable[..., Any]) -> Callable[..., Any]:
        lock = self.lock

        @functools.wraps(original)
        def write(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return write
