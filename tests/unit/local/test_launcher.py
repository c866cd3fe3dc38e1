"""Container programs forked from a warm zygote behave as separate runs: argv, environment, working
directory, stdout/stderr, exit status, a session of their own, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storyflow_local.launcher import Launcher, Process, WarmProcess, console_entry

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A console script, as pip writes them, of tests/unit/local/zygote_program.py."""
    path = tmp_path_factory.mktemp("bin") / "zygote-program"
    path.write_text(
        f"#!{sys.executable}\nimport sys\nfrom tests.unit.local.zygote_program import main\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = sys.argv[0].removesuffix('.exe')\n"
        "    sys.exit(main())\n"
    )
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def launcher(env: dict[str, str]) -> Iterator[Launcher]:
    launcher = Launcher(env)
    yield launcher
    launcher.stop()


def run(process: Process) -> tuple[int, str, str]:
    assert process.stdout is not None and process.stderr is not None
    out, err = process.stdout.read().decode(), process.stderr.read().decode()
    process.stdout.close()
    process.stderr.close()
    return process.wait(30), out, err


def test_a_run_has_its_own_argv_environment_directory_session_and_exit_code(
    launcher: Launcher, program: Path, env: dict[str, str], tmp_path: Path
) -> None:
    # When the program runs twice, warm, with different arguments and variables
    first = launcher.popen([str(program), "report", "one"], {**env, "RUN_VAR": "first"}, str(tmp_path))
    code, out, err = run(first)
    second = launcher.popen([str(program), "report", "two"], {**env, "RUN_VAR": "second"}, "/")
    # Then each was forked from the zygote and saw only its own argv, environment and directory
    assert isinstance(first, WarmProcess) and isinstance(second, WarmProcess)
    report = json.loads(out)
    assert report["argv"] == [str(program), "report", "one"]
    assert (report["run_var"], report["cwd"]) == ("first", str(tmp_path))
    # And it led a session of its own (so signalling its group reaches it and what it started)
    assert report["pid"] == report["pgid"] == report["sid"] == first.pid
    # And its stdout, stderr and exit code are its own
    assert (code, err) == (3, "to stderr\n")
    code, out, _ = run(second)
    assert (json.loads(out)["run_var"], json.loads(out)["cwd"], code) == ("second", "/", 3)


def test_a_process_a_run_starts_inherits_the_runs_environment(
    launcher: Launcher, program: Path, env: dict[str, str]
) -> None:
    code, out, _ = run(launcher.popen([str(program), "child"], {**env, "RUN_VAR": "inherited"}))
    assert (code, out) == (0, "inherited\n")


def test_a_run_builds_the_programs_clients_without_reading_a_model_file(
    launcher: Launcher, program: Path, env: dict[str, str]
) -> None:
    # When a warm run builds the S3 and DynamoDB clients the media steps use
    code, out, _ = run(launcher.popen([str(program), "clients"], env))
    # Then it read no service model: the zygote parsed them once, before forking
    assert code == 0
    assert json.loads(out) == []


def test_a_run_ends_like_an_interpreter(launcher: Launcher, program: Path, env: dict[str, str]) -> None:
    # An uncaught exception: its traceback on stderr, exit 1
    code, _, err = run(launcher.popen([str(program), "raise"], env))
    assert code == 1 and "RuntimeError: boom" in err
    # sys.exit with a message: the message on stderr, exit 1
    code, _, err = run(launcher.popen([str(program), "exit-message"], env))
    assert (code, err) == (1, "bye\n")


def test_sigterm_stops_a_run_with_the_status_of_the_signal(
    launcher: Launcher, program: Path, env: dict[str, str]
) -> None:
    process = launcher.popen([str(program), "sleep"], env)
    assert process.stdout is not None
    assert process.stdout.readline() == b"sleeping\n"
    assert process.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(0.01)
    # When its process group gets SIGTERM (as StopTask sends it)
    os.killpg(process.pid, signal.SIGTERM)
    # Then it ended by the signal, reported as Popen reports it
    assert process.wait(30) == -signal.SIGTERM


def test_programs_that_cannot_be_forked_warm_run_as_new_processes(
    launcher: Launcher, program: Path, env: dict[str, str]
) -> None:
    # A program that is not a console script of this interpreter
    assert console_entry(sys.executable) is None
    plain = launcher.popen([sys.executable, "-c", "print('plain')"], env)
    assert isinstance(plain, subprocess.Popen) and run(plain)[:2] == (0, "plain\n")
    # A run whose interpreter settings differ from the zygote's (here PYTHONHASHSEED)
    other = launcher.popen([str(program), "report", "x"], {**env, "PYTHONHASHSEED": "7"})
    assert isinstance(other, subprocess.Popen) and run(other)[0] == 3
