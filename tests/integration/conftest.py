"""Integration tests run against the local cloud: the real template.yaml, deployed once per session.

    def test_something(local_cloud):
        local_cloud.client("stepfunctions").start_execution(...)
        requests.get(local_cloud.api_url + "/health")

The local cloud replaces process-wide state (moto's backends, os.environ), so these tests run after
every other test of the session (see pytest_collection_modifyitems below).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storyflow.local import LocalCloud, LocalCloudConfig

ROOT = Path(__file__).resolve().parents[2]
# A stereo job whose segment 00001 the stereo engine fails on (contract: STEREO_FAIL_INPUT_SUBSTRING).
FAULTY_STEREO_JOB = "st-faulty-0000000001"
CONTAINER_ENVIRONMENT = {"STEREO_FAIL_INPUT_SUBSTRING": f"{FAULTY_STEREO_JOB}/00001"}
# The on-demand backend on a short clock (template defaults: 900 s lifetime, 300 s grace, 10 periods):
# lives 8 s after the last ping, never stopped in its first 4 s, idle alarm after 2 periods of 60 s
# (2 local seconds at the local cloud's time scale of 1/60). Only tests/integration/test_backend.py uses them.
STACK_PARAMETERS = {
    "BackendLifetimeSeconds": "8",
    "BackendStartupGraceSeconds": "4",
    "BackendAlarmPeriodSeconds": "60",
    "BackendAlarmEvaluationPeriods": "2",
}
TEMPLATE = ROOT / "template.yaml"
INTEGRATION_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Integration tests last: the session's local cloud must not be up while unit tests (moto mocks) run."""
    integration = [item for item in items if INTEGRATION_DIR in Path(str(item.path)).parents]
    if integration:
        others = [item for item in items if item not in set(integration)]
        items[:] = others + integration
    for item in integration:
        item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """Given the project's template.yaml deployed into a local cloud (Stage=local, CPU engines)."""
    if not TEMPLATE.is_file():
        pytest.skip(f"{TEMPLATE} does not exist yet: nothing to deploy")
    state = tmp_path_factory.mktemp("local-cloud") / "local.json"
    config = LocalCloudConfig(
        template=TEMPLATE,
        state_file=state,
        container_environment=CONTAINER_ENVIRONMENT,
        parameters=dict(STACK_PARAMETERS),
    )
    with LocalCloud(config) as cloud:
        yield cloud
