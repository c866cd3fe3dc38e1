"""The in-process Lambda runtime on its own: per-thread environment, context, errors, import failures."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest

from storyflow_local import emf, environ
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


def test_a_preloaded_function_ran_its_init_once_in_its_init_environment(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    # Given a handler whose module counts its imports and records the environment of its init
    source = (
        "import builtins, os\n"
        "builtins.preload_inits = getattr(builtins, 'preload_inits', 0) + 1\n"
        "INIT = (os.environ['AWS_LAMBDA_LOG_STREAM_NAME'], os.environ['V'], os.environ['BASE'])\n"
        "print('init done')\n"
        "def handler(e, c):\n"
        "    import builtins\n"
        "    return [builtins.preload_inits, *INIT]\n"
    )
    printed: list[str] = []
    runtime.on_output = lambda spec, lines: printed.extend(lines)
    spec = _spec(tmp_path, source, environment={"V": "v"})
    import builtins

    emf.install()  # what functions print is kept for their log (the Lambda adapter installs it)
    try:
        # When it is preloaded, then invoked twice
        assert runtime.preload(spec)
        first = json.loads(runtime.invoke(spec, {}).payload)
        second = json.loads(runtime.invoke(spec, {}).payload)
    finally:
        emf.uninstall()
        vars(builtins).pop("preload_inits", None)
    # Then its init ran once, before the invocations, in the init environment (function + base variables)
    assert first == second == [1, "local/init", "v", "b"]
    # And what init printed went where an invocation's output goes
    assert printed == ["init done"]
    assert "V" not in os.environ


def test_a_function_whose_preload_fails_fails_each_invocation_as_on_aws(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    # Given a handler module that cannot be imported
    spec = _spec(tmp_path, "import not_a_module_anywhere\n")
    # When it is preloaded (refused, nothing kept) and invoked twice
    assert not runtime.preload(spec)
    results = [runtime.invoke(spec, {}) for _ in range(2)]
    # Then every invocation is the import error
    for result in results:
        assert result.errored and json.loads(result.payload)["errorType"] == "Runtime.ImportModuleError"


def test_a_loaded_handler_never_waits_for_another_functions_import(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    # Given a function already loaded, and another whose import blocks until released
    (tmp_path / "fast").mkdir()
    (tmp_path / "slow").mkdir()
    fast = _spec(tmp_path / "fast", "def handler(e, c):\n    return 'fast'\n", name="fast")
    release = threading.Event()
    import builtins

    vars(builtins).__setitem__("preload_release", release)
    slow = _spec(
        tmp_path / "slow",
        "import builtins\nbuiltins.preload_release.wait(10)\ndef handler(e, c):\n    return 'slow'\n",
        name="slow",
    )
    try:
        assert runtime.preload(fast)
        importing = threading.Thread(target=runtime.preload, args=(slow,))
        importing.start()
        # When the loaded one is invoked while the other is importing
        result = runtime.invoke(fast, {})
        still_importing = importing.is_alive()
        release.set()
        importing.join(10)
    finally:
        release.set()
        vars(builtins).pop("preload_release", None)
    # Then it answered while the import was still in progress
    assert json.loads(result.payload) == "fast" and still_importing
    assert json.loads(runtime.invoke(slow, {}).payload) == "slow"
