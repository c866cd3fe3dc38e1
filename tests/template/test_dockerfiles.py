"""Every container Dockerfile builds from what the repository has: its documented `docker build`
context holds every COPY source, and every storyflow_* package its code imports is copied in (the
stereo image needs the shared serving library, containers/serving). No Docker needed."""

from __future__ import annotations

import ast
import fnmatch
import re
import shlex
from pathlib import Path

import pytest

from tests.support.template import ROOT

CONTAINERS = ROOT / "containers"
DOCKERFILES = sorted(
    p for p in CONTAINERS.glob("*/Dockerfile*") if p.is_file() and not p.name.endswith(".dockerignore")
)
BUILD_LINE = re.compile(r"^#\s+docker build\s+(?P<args>.+)$", re.MULTILINE)


def _context(dockerfile: Path) -> Path:
    """The build context of the `docker build` line in the Dockerfile's header comment (its last argument)."""
    match = BUILD_LINE.search(dockerfile.read_text())
    assert match, f"{dockerfile.relative_to(ROOT)}: no '#   docker build ... CONTEXT' line in its header"
    args = shlex.split(match["args"])
    if "-f" in args:
        assert (ROOT / args[args.index("-f") + 1]) == dockerfile, f"{dockerfile}: -f names another file"
    else:
        assert dockerfile.name == "Dockerfile", f"{dockerfile}: a non-default name needs -f in its build line"
    return ROOT / args[-1]


def _copy_sources(dockerfile: Path) -> list[str]:
    sources = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if not words or words[0] not in {"COPY", "ADD"}:
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        sources += args[:-1]
    return sources


def _ignored(context: Path, dockerfile: Path) -> list[str]:
    """The .dockerignore patterns that apply (BuildKit: <Dockerfile>.dockerignore, else the context's)."""
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"):
        if candidate.is_file():
            return [p.strip() for p in candidate.read_text().splitlines() if p.strip() and p[0] != "#"]
    return []


def _excluded(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes; a match on a parent counts."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatch(prefix, glob) for prefix in prefixes):
            excluded = not negate
    return excluded


def _imported_packages(package_dir: Path) -> set[str]:
    names: set[str] = set()
    for source in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
    return {n for n in names if n == "storyflow" or n.startswith("storyflow_")}


def test_there_are_dockerfiles_to_check() -> None:
    assert {p.parent.name for p in DOCKERFILES} >= {"media", "stereo", "backend"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(CONTAINERS)))
def test_every_copy_source_is_in_the_build_context(dockerfile: Path) -> None:
    # Given the documented build context, Then every COPY source exists there and is not dockerignored
    context = _context(dockerfile)
    assert context.is_dir(), f"{dockerfile.relative_to(ROOT)}: build context {context} is not a folder"
    patterns = _ignored(context, dockerfile)
    for source in _copy_sources(dockerfile):
        assert (context / source).exists(), (
            f"{dockerfile.relative_to(ROOT)}: COPY {source} does not exist in {context.relative_to(ROOT)}/"
        )
        assert not _excluded(source, patterns), (
            f"{dockerfile.relative_to(ROOT)}: COPY {source} is dockerignored"
        )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(CONTAINERS)))
def test_every_storyflow_package_the_image_imports_is_copied_in(dockerfile: Path) -> None:
    # Given the container's own package(s), Then each storyflow_* package they import is in the image
    context = _context(dockerfile)
    copied = {Path(s.rstrip("/")).name for s in _copy_sources(dockerfile)}
    own = {p.name for p in dockerfile.parent.glob("storyflow_*") if p.is_dir()}
    assert own <= copied, f"{dockerfile.relative_to(ROOT)}: does not copy its own package(s) {own - copied}"
    needed = set().union(*(_imported_packages(dockerfile.parent / name) for name in own))
    assert "storyflow" not in needed  # the Lambda layer package never goes into an image
    missing = needed - copied
    assert not missing, (
        f"{dockerfile.relative_to(ROOT)} imports {sorted(missing)} but does not COPY them "
        f"(build context {context.relative_to(ROOT)}/)"
    )
