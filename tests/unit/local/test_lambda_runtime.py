"""The in-process Lambda runtime on its own: per-thread environment, context, errors, import failures."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest

from storyflow_local import environ
from storyflow_local.lambda_runtime import FunctionSpec, LambdaRuntime


@pytest.fixture
def runtime():  # type: ignore[no-untyped-def]
    environ.install()
    try:
        yield LambdaRuntime({"BASE": "b"})
    finally:
        environ.uninstall()


def _spec(tmp_path: Path, source: str, **kw: object) -> FunctionSpec:
    (tmp_path / "app.py").write_text(source)
    values: dict = {
        "name": "fn",
        "arn": "arn:aws:lambda:us-east-1:1:function:fn",
        "handler": "app.handler",
        "code_dir": tmp_path,
        "timeout": 5.0,
        "memory_mb": 128,
    }
    values.update(kw)
    return FunctionSpec(**values)


def test_concurrent_invocations_each_see_their_own_environment(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    # Given a handler that reads an env var after a pause, and two functions with different values
    source = (
        "import os, time\n"
        "def handler(e, c):\n"
        "    time.sleep(0.2)\n"
        "    return os.environ['V'] + os.environ['BASE']\n"
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    specs = [_spec(tmp_path / d, source, name=d, environment={"V": d}) for d in ("a", "b")]
    results: dict[str, str] = {}

    def call(spec: FunctionSpec) -> None:
        results[spec.name] = json.loads(runtime.invoke(spec, {}).payload)

    # When they run at the same time in threads
    threads = [threading.Thread(target=call, args=(s,)) for s in specs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then each saw its own value, and the process environment is untouched
    assert results == {"a": "ab", "b": "bb"}
    assert "V" not in os.environ


def test_import_errors_and_missing_handlers_are_runtime_errors(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    broken = runtime.invoke(_spec(tmp_path, "import not_a_module_anywhere\n"), {})
    assert broken.errored and json.loads(broken.payload)["errorType"] == "Runtime.ImportModuleError"
    (tmp_path / "x").mkdir()
    missing = runtime.invoke(_spec(tmp_path / "x", "def other(e, c): pass\n"), {})
    assert json.loads(missing.payload)["errorType"] == "Runtime.HandlerNotFound"


def test_unserialisable_results_are_marshal_errors(runtime: LambdaRuntime, tmp_path: Path) -> None:
    result = runtime.invoke(_spec(tmp_path, "def handler(e, c):\n    return object()\n"), {})
    assert json.loads(result.payload)["errorType"] == "Runtime.MarshalError"


def test_the_overlay_isolates_threads() -> None:
    environ.install()
    try:
        seen: list[str | None] = []
        with environ.overlay({"ONLY_HERE": "1"}):
            other = threading.Thread(target=lambda: seen.append(os.environ.get("ONLY_HERE")))
            other.start()
            other.join()
            assert os.environ["ONLY_HERE"] == "1"
            assert "ONLY_HERE" in dict(os.environ)
        assert seen == [None]
        assert "ONLY_HERE" not in os.environ
    finally:
        environ.uninstall()


def test_each_function_gets_its_own_copy_of_isolated_packages(tmp_path: Path) -> None:
    # Given a shared package with module-level state read from the environment at import time
    shared = tmp_path / "lib" / "sharedpkg"
    shared.mkdir(parents=True)
    (shared / "__init__.py").write_text("import os\nSERVICE = os.environ.get('SERVICE')\n")
    source = "import sharedpkg\ndef handler(e, c):\n    return sharedpkg.SERVICE\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    specs = [_spec(tmp_path / d, source, name=d, environment={"SERVICE": d}) for d in ("a", "b")]
    sys.path.insert(0, str(tmp_path / "lib"))
    environ.install()
    try:
        runtime = LambdaRuntime({}, isolated_packages=("sharedpkg",))
        # When two functions import it
        results = [json.loads(runtime.invoke(spec, {}).payload) for spec in specs]
    finally:
        environ.uninstall()
        sys.path.remove(str(tmp_path / "lib"))
    # Then each saw the state of its own import, as in separate processes
    assert results == ["a", "b"]
    assert "sharedpkg" not in sys.modules
