"""CloudFormation YAML: short-form intrinsics (`!Ref`, `!Sub`, `!GetAtt A.B`, ...) read as their long form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_TAGS = (
    "Ref",
    "GetAtt",
    "Sub",
    "Join",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Select",
    "Split",
    "GetAZs",
    "FindInMap",
    "ImportValue",
    "Base64",
    "Cidr",
    "Condition",
    "Transform",
    "ToJsonString",
    "Length",
)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's loader when PyYAML has it (about 10x faster on a large template)."""


def _constructor(tag: str) -> Any:
    key = "Ref" if tag == "Ref" else ("Condition" if tag == "Condition" else f"Fn::{tag}")

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {key: value}

    return construct


for _tag in _TAGS:
    _Loader.add_constructor(f"!{_tag}", _constructor(_tag))


def loads(text: str) -> dict[str, Any]:
    data = yaml.load(text, Loader=_Loader)
    if not isinstance(data, dict):
        raise ValueError("a template must be a YAML mapping")
    return data


def load(path: Path) -> dict[str, Any]:
    return loads(path.read_text())
