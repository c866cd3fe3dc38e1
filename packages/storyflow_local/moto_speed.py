"""Per-request costs of moto's server that answer the same for every request: computed once.

moto's dispatcher finds the backend of every request under one process-wide lock, and for each host it
lists moto's package directory (about 200 `stat`s) and tries each backend's URL patterns. The answer
depends on the host alone (moto's modules and URL patterns never change while it runs), so it is
memoised per host: the same backend for the same request, found once, and no request waits behind
another's directory listing. Behaviour is unchanged; only the repeated work is gone.
"""

from __future__ import annotations

import threading
from typing import Any

from storyflow_local.patching import Patches


def install(patches: Patches) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    cache: dict[tuple[int, str | None], tuple[Any, Any]] = {}  # (id(app), host) -> (app, backend)
    lock = threading.Lock()

    def get_backend_for_host(app: Any, host: str | None) -> Any:
        key = (id(app), host)
        entry = cache.get(key)
        if entry is not None and entry[0] is app:
            return entry[1]
        found = original(app, host)
        with lock:
            cache[key] = (app, found)  # the app is kept, so its id is never another app's
        return found

    patches.set(DomainDispatcherApplication, "get_backend_for_host", get_backend_for_host)
