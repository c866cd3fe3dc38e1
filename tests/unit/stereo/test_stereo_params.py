"""Params validation of the stereo container (Given/When/Then)."""

from __future__ import annotations

import pytest
from storyflow_stereo.errors import InvalidParams, InvalidRequest
from storyflow_stereo.params import StereoParams


def test_missing_params_mean_defaults() -> None:
    # Given no params / an empty object, When validated, Then the documented defaults apply
    for raw in (None, {}):
        params = StereoParams.from_dict(raw)
        assert params == StereoParams(layout="full", baseline=0.03, convergence=0.5)


def test_valid_params_are_kept() -> None:
    # Given every field set, When validated, Then the values are kept (layout case-folded, ints accepted)
    params = StereoParams.from_dict({"layout": "HALF", "baseline": 0.05, "convergence": 1})
    assert params == StereoParams(layout="half", baseline=0.05, convergence=1.0)
    assert params.to_dict() == {"layout": "half", "baseline": 0.05, "convergence": 1.0}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1, 2], "params must be a JSON object"),
        ({"layout": "top-bottom"}, "layout must be one of ['full', 'half']"),
        ({"layout": 3}, "layout must be one of"),
        ({"baseline": 0}, "baseline must be > 0"),
        ({"baseline": -0.01}, "baseline must be > 0"),
        ({"baseline": 0.5}, "baseline must be > 0 and <= 0.2"),
        ({"baseline": "0.03"}, "baseline must be a number"),
        ({"baseline": True}, "baseline must be a number"),
        ({"baseline": float("nan")}, "baseline must be finite"),
        ({"convergence": 1.5}, "convergence must be between 0 and 1"),
        ({"convergence": -0.1}, "convergence must be between 0 and 1"),
        ({"convergence": None}, "convergence must be a number"),
        ({"baselin": 0.03}, "unknown params ['baselin']"),
    ],
)
def test_invalid_params_say_what_to_fix(raw: object, message: str) -> None:
    # Given an invalid params value, When validated, Then InvalidParams (a 400 InvalidRequest) explains it
    with pytest.raises(InvalidParams) as info:
        StereoParams.from_dict(raw)
    assert message in str(info.value)
    assert isinstance(info.value, InvalidRequest)
    assert info.value.status == 400
    assert info.value.error == "InvalidParams"
