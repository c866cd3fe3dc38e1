"""The media image's copy of the S3 key shapes (storyflow_media.keys) agrees with storyflow.keys, the
one home of every key: the same key for every job id, index and step, for every function of the copy,
and the copy covers every key function the media commands call."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from storyflow_media import keys as media_keys

from storyflow import keys

# media function name -> storyflow.keys function name (where they differ)
RENAMED = {"source_key": "upload_key"}
NOT_KEYS = {"job_id"}  # the argparse type (the layer's check_job_id raises BadRequest instead)

JOB_IDS = ["stereo-20261123-0123456789ab", "st-20261123-1a2b3c4d5e6f", "abcdefgh", "a" * 64, "0-1-2-3-4-5"]
INDEXES = [0, 1, 7, 99, 12345, 99999]
STEPS = ["chunk", "reassemble", "compose", "a", "step-2"]
MEDIA_DIR = Path(media_keys.__file__).resolve().parent


def _key_functions() -> dict[str, Callable[..., str]]:
    return {
        name: fn
        for name, fn in inspect.getmembers(media_keys, inspect.isfunction)
        if fn.__module__ == media_keys.__name__ and name not in NOT_KEYS
    }


def _arguments(fn: Callable[..., str]) -> list[tuple[Any, ...]]:
    params = list(inspect.signature(fn).parameters)
    values = {"job": JOB_IDS, "index": INDEXES, "step": STEPS}
    assert set(params) <= set(values), f"{fn.__name__}({params}): add sample values for its parameters"
    combos: list[tuple[Any, ...]] = [()]
    for param in params:
        combos = [(*c, v) for c in combos for v in values[param]]
    return combos


def test_the_copy_has_key_functions_to_check() -> None:
    assert {"segment_key", "manifest_key", "final_key", "step_result_key", "step_error_key"} <= set(
        _key_functions()
    )


@pytest.mark.parametrize("name", sorted(_key_functions()))
def test_every_media_key_function_returns_what_storyflow_keys_returns(name: str) -> None:
    # Given a key function of the media copy and its counterpart in storyflow.keys
    fn = _key_functions()[name]
    home = getattr(keys, RENAMED.get(name, name), None)
    assert home is not None, f"storyflow_media.keys.{name} has no storyflow.keys.{RENAMED.get(name, name)}"
    # When both are called with the same job ids / indexes / steps, Then they return the same key
    for args in _arguments(fn):
        assert fn(*args) == home(*args), f"{name}{args}"


def test_the_job_id_rule_is_the_same() -> None:
    assert media_keys.JOB_ID.pattern == keys.JOB_ID_PATTERN


def test_every_key_the_media_commands_use_comes_from_the_copy() -> None:
    # Given the media package's sources, Then every `keys.<fn>(...)` they call is a checked function
    checked = set(_key_functions()) | NOT_KEYS
    used: set[str] = set()
    for source in MEDIA_DIR.glob("*.py"):
        if source.name == "keys.py":
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "keys"
            ):
                used.add(node.attr)
    assert used, "the media commands use no keys.* at all? (the check would be vacuous)"
    assert used <= checked, f"keys used but not checked against storyflow.keys: {sorted(used - checked)}"
    # And no module writes a key shape by hand
    for source in MEDIA_DIR.glob("*.py"):
        if source.name != "keys.py":
            text = source.read_text()
            assert 'f"jobs/' not in text and 'f"segments/' not in text, f"{source.name} builds a key itself"
