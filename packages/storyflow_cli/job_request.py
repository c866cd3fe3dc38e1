"""A job request's body from the command line: a JSON file, KEY=VALUE settings, --prompt, --text and a
story's --scenes file."""

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


def read_scenes(path: Path) -> list[Any]:
    """A story's scenes file: a JSON array of {text, visual_prompt?, image_uri?}, or an object with a
    `scenes` array (a whole story request's file works too). The API checks each scene."""
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CliError(f"cannot read {path}: {error}", code=2) from error
    scenes = loaded.get("scenes") if isinstance(loaded, dict) else loaded
    if not isinstance(scenes, list):
        raise CliError(
            f"{path} must hold a JSON array of scenes (or an object with a 'scenes' array)", code=2
        )
    return scenes


def build_request(
    kind: JobKind,
    json_file: Path | None,
    settings: list[str],
    prompt: str | None,
    text: str | None,
    scenes_file: Path | None = None,
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
    if scenes_file is not None:
        if kind is not JobKind.STORY:
            raise CliError(f"--scenes is for story jobs, not {kind.value}", code=2)
        body["scenes"] = read_scenes(scenes_file)
    if body.get("kind", kind.value) != kind.value:
        raise CliError(f"the request says kind {body['kind']!r} but the command says {kind.value!r}", code=2)
    body["kind"] = kind.value
    return body
