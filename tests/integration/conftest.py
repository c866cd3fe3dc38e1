"""Integration tests run against the local cloud (the real template.yaml, deployed once per session) or,
with STORYFLOW_STACK=<name>, against that deployed stack (tests/support/target.py):

    def test_something(target):
        target.client("stepfunctions").start_execution(...)
        target.http("GET", "/health")           # signed (SigV4) when the API is a real API Gateway
        target.api.call("GET", "/jobs")         # storyflow_cli's ApiClient: JSON, retries, ApiFailure

Tests that need the local cloud itself (its processes, its ECS agent, its alarm clock, the fault injected
into its containers, the short stack parameters below) take the `local_cloud` fixture or carry
`@pytest.mark.local_only("why")`; against a stack they are skipped, saying why.

The local cloud replaces process-wide state (moto's backends, os.environ), so these tests run after
every other test of the session (see pytest_collection_modifyitems below).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storyflow_cli.client import CliError
from storyflow_local import LocalCloud, LocalCloudConfig
from tests.support.target import REGION_ENV, STACK_ENV, IntegrationTarget, from_local_cloud, from_stack

ROOT = Path(__file__).resolve().parents[2]
# A stereo job whose segment 00001 the stereo engine fails on (contract: STEREO_FAIL_INPUT_SUBSTRING).
FAULTY_STEREO_JOB = "st-faulty-0000000001"
# A tts text the tts engine fails on (contract: TTS_FAIL_TEXT_SUBSTRING; tests/integration/test_tts.py).
FAULTY_TTS_TEXT = "storyflow-tts-injected-fault"
# A video prompt the video container fails on (contract: VIDEO_FAIL_PROMPT_SUBSTRING; test_video.py).
FAULTY_VIDEO_PROMPT = "storyflow-video-injected-fault"
CONTAINER_ENVIRONMENT = {
    "STEREO_FAIL_INPUT_SUBSTRING": f"{FAULTY_STEREO_JOB}/00001",
    "TTS_FAIL_TEXT_SUBSTRING": FAULTY_TTS_TEXT,
    "VIDEO_FAIL_PROMPT_SUBSTRING": FAULTY_VIDEO_PROMPT,
}
# The on-demand backend on a short clock (template defaults: 900 s lifetime, 300 s grace, 10 periods):
# lives 8 s after the last ping, never stopped in its first 4 s, idle alarm after 2 periods of 60 s
# (2 local seconds at the local cloud's time scale of 1/60). Only tests/integration/test_backend.py uses them.
STACK_PARAMETERS = {
    # Stories at 240p with 1 s clips (template defaults: 720p, 121 frames): the same steps, less CPU.
    "StoryShortSide": "240",
    "StoryClipFrames": "25",
    "BackendLifetimeSeconds": "8",
    "BackendStartupGraceSeconds": "4",
    "BackendAlarmPeriodSeconds": "60",
    "BackendAlarmEvaluationPeriods": "2",
}
TEMPLATE = ROOT / "template.yaml"
INTEGRATION_DIR = Path(__file__).resolve().parent


def target_stack() -> str | None:
    """The deployed stack the integration tests target (STORYFLOW_STACK), or None for the local cloud."""
    return os.environ.get(STACK_ENV, "").strip() or None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"local_only(reason): needs the local cloud itself; skipped (with the reason) when {STACK_ENV} "
        "targets a deployed stack",
    )


def local_only_reason(item: pytest.Item) -> str | None:
    """Why this test can only run on the local cloud (None: it can run against a deployed stack too)."""
    marker = item.get_closest_marker("local_only")
    if marker is not None:
        return str(marker.args[0] if marker.args else marker.kwargs.get("reason", "marked local_only"))
    if "local_cloud" in getattr(item, "fixturenames", ()):
        return "it inspects the local cloud's own deployment (the local_cloud fixture)"
    return None


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Integration tests last: the session's local cloud must not be up while unit tests (moto mocks) run.
    Against a deployed stack, the tests that need the local cloud are skipped, each saying why."""
    integration = [item for item in items if INTEGRATION_DIR in Path(str(item.path)).parents]
    if integration:
        others = [item for item in items if item not in set(integration)]
        items[:] = others + integration
    stack = target_stack()
    for item in integration:
        item.add_marker(pytest.mark.integration)
        reason = local_only_reason(item) if stack else None
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"{STACK_ENV}={stack}: local cloud only: {reason}"))


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """Given the project's template.yaml deployed into a local cloud (Stage=local, CPU engines)."""
    stack = target_stack()
    if stack:
        pytest.skip(f"{STACK_ENV}={stack}: local cloud only (it needs the local cloud itself)")
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
        # Every Lambda init (Powertools' Logger binds sys.stdout as it is then) runs in this setup, not while
        # pytest swaps sys.stdout between phases: a function initialised then would log past the cloud's
        # function log, which the tests read.
        cloud.wait_until_warm(120)
        yield cloud


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> IntegrationTarget:
    """Given what the tests run against: the stack named by STORYFLOW_STACK (its CloudFormation outputs,
    AWS credentials from the environment), else the session's local cloud."""
    stack = target_stack()
    if stack is None:
        return from_local_cloud(request.getfixturevalue("local_cloud"))
    try:
        return from_stack(stack, os.environ.get(REGION_ENV) or None)
    except CliError as error:
        problem = error.message
    pytest.fail(f"{STACK_ENV}={stack}: {problem}", pytrace=False)
