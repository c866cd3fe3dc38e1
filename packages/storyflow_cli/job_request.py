"""A job request's body from the command line: a JSON file, KEY=VALUE settings, --prompt and --text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from storyflow.models import JobKind
from storyflow_cli.errors import CliError


def parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def build_request(
    kind: JobKind, json_file: Path | None, settings: list[str], prompt: str | None, text: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if json_file is not None:
        try:
            loaded = json.loads(json_file.read_text())
        except (OSError, ValueError) as error:
            raise CliError(f"cannot read {json_file}: {error}", code=2) from error
        if not isinstance(loaded, dict):
            raise CliError(f"{json_file} must hold a JSON object", code=2)
        body.update(loaded)
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--set wants KEY=VALUE, got {item!r}", code=2)
        body[key.strip()] = parse_value(value)
    if prompt is not None:
        body["prompt"] = prompt
    if text is not None:
        body["text"] = text
    if body.get("kind", kind.value) != kind.value:
        raise CliError(f"the request says kind {body['kind']!r} but the command says {kind.value!r}", code=2)
    body["kind"] = kind.value
    return body
