"""A per-thread overlay on `os.environ`, so functions running concurrently in threads see their own env.

`os.environ` is replaced by a mapping that reads the current thread's overlay first. Code that calls
`os.environ.get`, `os.getenv`, `os.environ[...]` or copies the environment sees the overlay; threads
without one (moto's server, the test itself) see the process environment unchanged. Writes made while
an overlay is active stay in the overlay. Child processes get the process environment: pass `env=`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

_DELETED = object()


class OverlayEnviron(MutableMapping[str, str]):
    def __init__(self, base: MutableMapping[str, str]) -> None:
        self.base = base
        self._local = threading.local()

    def _layer(self) -> dict[str, Any] | None:
        layer: dict[str, Any] | None = getattr(self._local, "layer", None)
        return layer

    def __getitem__(self, key: str) -> str:
        layer = self._layer()
        if layer is not None and key in layer:
            value = layer[key]
            if value is _DELETED:
                raise KeyError(key)
            return str(value)
        return self.base[key]

    def __setitem__(self, key: str, value: str) -> None:
        layer = self._layer()
        if layer is not None:
            layer[key] = value
        else:
            self.base[key] = value

    def __delitem__(self, key: str) -> None:
        layer = self._layer()
        if layer is not None:
            if key not in self:
                raise KeyError(key)
            layer[key] = _DELETED
        else:
            del self.base[key]

    def _keys(self) -> list[str]:
        layer = self._layer()
        if layer is None:
            return list(self.base)
        keys = [k for k in self.base if layer.get(k, None) is not _DELETED]
        keys.extend(k for k, v in layer.items() if v is not _DELETED and k not in self.base)
        return keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __contains__(self, key: object) -> bool:
        layer = self._layer()
        if layer is not None and key in layer:
            return layer[key] is not _DELETED
        return key in self.base

    def copy(self) -> dict[str, str]:
        return dict(self.items())

    def __repr__(self) -> str:
        return f"OverlayEnviron({self.copy()!r})"

    # os._Environ API used by some libraries
    def setdefault(self, key: str, default: str = "") -> str:
        if key not in self:
            self[key] = default
        return self[key]

    @contextmanager
    def overlay(self, values: Mapping[str, str]) -> Iterator[None]:
        """Within the block, this thread sees `values` over the process environment."""
        previous = self._layer()
        layer: dict[str, Any] = dict(previous) if previous is not None else {}
        layer.update(values)
        self._local.layer = layer
        try:
            yield
        finally:
            self._local.layer = previous


_lock = threading.Lock()
_installed: OverlayEnviron | None = None
_users = 0


def install() -> OverlayEnviron:
    """Replace os.environ with the overlay (reference-counted)."""
    global _installed, _users
    with _lock:
        if _installed is None:
            _installed = OverlayEnviron(os.environ)
            os.environ = _installed  # type: ignore[assignment]  # noqa: B003 - replaced, then restored
        _users += 1
        return _installed


def uninstall() -> None:
    global _installed, _users
    with _lock:
        if _installed is None:
            return
        _users -= 1
        if _users <= 0:
            if os.environ is _installed:
                os.environ = _installed.base  # type: ignore[assignment]  # noqa: B003
            _installed = None
            _users = 0


@contextmanager
def overlay(values: Mapping[str, str]) -> Iterator[None]:
    """Thread-local env overlay; a no-op wrapper if the overlay is not installed (then env is global)."""
    current = os.environ
    if isinstance(current, OverlayEnviron):
        with current.overlay(values):
            yield
    else:
        raise RuntimeError("environ overlay is not installed")
