"""Fixtures for every test directory."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator
from typing import Any

import pytest

# `make test` runs pytest on two processes (pytest-xdist, -n 2). What may share a process, and how the work is
# split (pytest_xdist_make_scheduler below):
# - The local cloud's tests (tests/integration, then tests/browser, which reuses its cloud) run together in
#   one process, in collection order, as they do without xdist. That process takes nothing else: its cloud
#   replaces process-wide state (moto's backends, os.environ) until the session ends, and the backend they
#   start binds a fixed port and database path, so a second cloud in another process would clash with it.
#   They take about as long as all the other tests together, so they start first, on their own worker.
# - Every other test runs in the other process(es), a file at a time (module and session fixtures are set up
#   once per file), except the files that share tests/template's `tool_runs` (sam, cfn-lint and checkov, all
#   started at once the first time one of them is asked for): one unit, so those tools run once.
CLOUD_TEST_DIRS = ("tests/integration/", "tests/browser/")
CLOUD_UNIT = "tests/integration+tests/browser (the local cloud)"
SHARED_UNITS = {
    "tests/template/test_linters.py": "tests/template (tool_runs)",
    "tests/template/test_checkov.py": "tests/template (tool_runs)",
}


def work_unit(nodeid: str) -> str:
    """The xdist work unit a test belongs to: the local cloud's tests, a shared-fixture group, or its file."""
    path = nodeid.split("::", 1)[0]
    if path.startswith(CLOUD_TEST_DIRS):
        return CLOUD_UNIT
    return SHARED_UNITS.get(path, path)


def pytest_configure(config: pytest.Config) -> None:
    """xdist's workers must collect the same tests in the same order, and a test parametrized over a set is
    ordered by string hashes, which differ between processes: the workers get one PYTHONHASHSEED, random per
    run (shown in the header), so hash randomization still varies from run to run."""
    if config.getoption("numprocesses", None) and "PYTHONHASHSEED" not in os.environ:
        os.environ["PYTHONHASHSEED"] = str(random.randint(1, 4_294_967_295))


# With two workers or more, the local cloud's worker runs the tests on short clocks (the on-demand backend's
# 8 s lifetime, 2 s idle alarm): the other workers give way to it, at a lower CPU priority (their processes
# and what they start), so that sharing the cores with them does not stretch those clocks.
NON_CLOUD_NICENESS = 5


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers > 1 and work_unit(item.nodeid) != CLOUD_UNIT and os.nice(0) < NON_CLOUD_NICENESS:
        os.nice(NON_CLOUD_NICENESS - os.nice(0))


def pytest_report_header(config: pytest.Config) -> str | None:
    seed = os.environ.get("PYTHONHASHSEED")
    return f"PYTHONHASHSEED={seed}" if seed else None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    # Keep collection order inside each worker (xdist would sort the units by size): with a single worker
    # the local cloud's tests must still come last (tests/integration/conftest.py).
    config.option.loadscopereorder = False

    class CloudApart(LoadScopeScheduling):
        """Units as `work_unit` says; with two workers or more, the local cloud's unit first, on a worker
        that then gets nothing else."""

        cloud_node: Any = None

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if CLOUD_UNIT in self.workqueue and self.cloud_node is None and len(self.nodes) > 1:
                self.workqueue.move_to_end(CLOUD_UNIT, last=False)
                self.cloud_node = node
            super()._assign_work_unit(node)

        def _reschedule(self, node: Any) -> None:
            if node is self.cloud_node:
                if not self.workqueue and not node.shutting_down:
                    node.shutdown()
                return
            super()._reschedule(node)

    return CloudApart(config, log)


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A container CLI's `main()` run in-process calls logging.basicConfig, which binds a handler to the
    stderr pytest captured for that test; later log lines would hit the closed stream. Undo it per test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
