"""Which local program a container image stands for.

An image's ENTRYPOINT is a console script of this project (e.g. the `storyflow-media` image runs
`storyflow-media`), installed in the running interpreter's bin directory. The program of an image is
found, in order: `LocalCloudConfig.image_commands[<repository>]`, then a program named like the image
repository (`.../storyflow-media:tag` → `storyflow-media`; `.../storyflow/media` → `storyflow-media`,
then `media`) in that bin directory or on PATH.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


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
