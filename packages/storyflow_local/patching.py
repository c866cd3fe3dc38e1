"""Reversible monkeypatches on moto: every adapter records what it replaced and puts it back on stop."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

_MISSING = object()


class Patches:
    """A stack of `setattr`s, undone in reverse order."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []
        self._lock = threading.Lock()

    def set(self, owner: Any, name: str, value: Any) -> Any:
        """Replace `owner.name` with `value`.

        Returns `getattr(owner, name)` as it was: a plain function for a method of a class, a bound
        method for a classmethod, the value otherwise (None when there was none).
        """
        with self._lock:
            previous = getattr(owner, name, None)
            own = vars(owner).get(name, _MISSING) if hasattr(owner, "__dict__") else _MISSING
            self._undo.append((owner, name, own))
            setattr(owner, name, value)
        return previous

    def undo(self) -> None:
        with self._lock:
            while self._undo:
                owner, name, original = self._undo.pop()
                if original is _MISSING:
                    with contextlib.suppress(AttributeError):
                        delattr(owner, name)
                else:
                    setattr(owner, name, original)

    def __len__(self) -> int:
        return len(self._undo)
