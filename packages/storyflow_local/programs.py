"""Which local program a container image stands for.

An image's ENTRYPOINT is a console script of this project (e.g. the media image runs
`storyflow-media`), installed in the running interpreter's bin directory. The program of an image is
found, in order:

1. `LocalCloudConfig.image_commands[<repository>]` (tests, overrides);
2. the ENTRYPOINT of the Dockerfile the image is built from, when the image lives in an
   `AWS::ECR::Repository` of the stack: the repository's `Metadata: {Dockerfile: path}`, else
   `containers/<name>/Dockerfile` for a repository whose logical id is `<Name>Repository`;
3. a program named like the image repository (`.../storyflow-media:tag` → `storyflow-media`;
   `.../storyflow/media` → `storyflow-media`, then `media`) in that bin directory or on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Any


def image_repository(image: str) -> str:
    """`123.dkr.ecr.us-east-1.amazonaws.com/storyflow-media:latest@sha256:...` → `storyflow-media`."""
    name = image.split("@", 1)[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        name = rest  # drop the registry host
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name


def find_program(program: str, bin_dir: Path) -> str | None:
    if os.path.isabs(program):
        return program if os.access(program, os.X_OK) else None
    candidate = bin_dir / program
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(program)


def image_entrypoint(image: str, bin_dir: Path, image_commands: dict[str, list[str]]) -> list[str] | None:
    """The argv prefix an image runs (its ENTRYPOINT), or None if no local program stands for it."""
    repository = image_repository(image)
    candidates = [repository, repository.replace("/", "-"), repository.rsplit("/", 1)[-1]]
    for name in candidates:
        if name in image_commands:
            return list(image_commands[name])
    for name in dict.fromkeys(candidates[1:]):
        if find_program(name, bin_dir):
            return [name]
    return None


def resolve_argv(argv: list[str], bin_dir: Path) -> list[str]:
    """argv with its program made absolute; FileNotFoundError if there is no such program."""
    if not argv:
        raise FileNotFoundError("no command to run (no EntryPoint, Command or local program for the image)")
    program = find_program(argv[0], bin_dir)
    if program is None:
        raise FileNotFoundError(f"program {argv[0]!r} not found in {bin_dir} or on PATH")
    return [program, *argv[1:]]


def child_path(bin_dir: Path) -> str:
    return os.pathsep.join([str(bin_dir), os.environ.get("PATH", os.defpath)])


def dockerfile_entrypoint(path: Path) -> list[str] | None:
    """The last ENTRYPOINT of a Dockerfile (exec form, or shell form split like a shell would)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    entrypoint: list[str] | None = None
    for line in text.splitlines():
        match = re.match(r"\s*ENTRYPOINT\s+(.+)$", line, re.IGNORECASE)
        if not match:
            continue
        value = match.group(1).strip()
        try:
            parsed = json.loads(value)
            entrypoint = [str(v) for v in parsed] if isinstance(parsed, list) else None
        except ValueError:
            entrypoint = shlex.split(value)
    return entrypoint


def stack_image_programs(
    template: dict[str, Any], physical_ids: dict[str, str], root: Path
) -> dict[str, list[str]]:
    """{ECR repository name: ENTRYPOINT} for the stack's repositories whose Dockerfile is known."""
    programs: dict[str, list[str]] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::ECR::Repository" or logical_id not in physical_ids:
            continue
        dockerfile = (resource.get("Metadata") or {}).get("Dockerfile")
        if dockerfile:
            path = root / str(dockerfile)
        else:
            name = logical_id[: -len("Repository")] if logical_id.endswith("Repository") else logical_id
            path = root / "containers" / name.lower() / "Dockerfile"
        if path.is_file():
            entrypoint = dockerfile_entrypoint(path)
            if entrypoint:
                programs[physical_ids[logical_id]] = entrypoint
    return programs
