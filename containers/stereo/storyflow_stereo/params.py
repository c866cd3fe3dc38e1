"""The ``params`` object of an invocation, validated with messages that say what to fix."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from storyflow_stereo.errors import InvalidParams

LAYOUTS = ("full", "half")
BASELINE_MAX = 0.2


@dataclass(frozen=True)
class StereoParams:
    """How to render the side-by-side output.

    - ``layout``: ``"full"`` puts two full-width eyes side by side (output width = 2 x source width);
      ``"half"`` squeezes each eye to half width (output width = source width, rounded up to even).
    - ``baseline``: the largest disparity between the eyes, as a fraction of the source width
      (the whole depth range 0..1 maps onto ``baseline * width`` pixels of disparity).
    - ``convergence``: the depth (0 = farthest, 1 = nearest) that lands on the screen plane with zero
      disparity; nearer content pops out of the screen, farther content sits behind it.
    """

    layout: str = "full"
    baseline: float = 0.03
    convergence: float = 0.5

    @classmethod
    def from_dict(cls, raw: Any) -> StereoParams:
        """Validate a JSON ``params`` value (``None`` or missing means all defaults)."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise InvalidParams(f"params must be a JSON object, got {type(raw).__name__}")
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise InvalidParams(f"unknown params {unknown}; allowed: {sorted(allowed)}")
        defaults = cls()
        layout = raw.get("layout", defaults.layout)
        if not isinstance(layout, str) or layout.lower() not in LAYOUTS:
            raise InvalidParams(f"layout must be one of {list(LAYOUTS)}, got {layout!r}")
        baseline = _number(raw, "baseline", defaults.baseline)
        if not 0.0 < baseline <= BASELINE_MAX:
            raise InvalidParams(
                f"baseline must be > 0 and <= {BASELINE_MAX} (a fraction of the width), got {baseline}"
            )
        convergence = _number(raw, "convergence", defaults.convergence)
        if not 0.0 <= convergence <= 1.0:
            raise InvalidParams(f"convergence must be between 0 and 1 (a depth plane), got {convergence}")
        return cls(layout=layout.lower(), baseline=baseline, convergence=convergence)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(raw: dict[str, Any], name: str, default: float) -> float:
    value = raw.get(name, default)
    # bool is an int subclass: `true` is not a number here.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParams(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidParams(f"{name} must be finite, got {value}")
    return value
