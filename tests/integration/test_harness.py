"""The integration harness itself, without a cloud: wait_until, and the deployed-stack target
(STORYFLOW_STACK) built from a stack's outputs, with the local-only tests skipped against it."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.stub import Stubber

import storyflow_cli.target
from tests.support import poll
from tests.support import target as target_module
from tests.support.target import API_URL_ENV, STACK_ENV, from_stack

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = {
    "ApiUrl": "https://abc123.execute-api.eu-west-1.amazonaws.com/dev",
    "InputBucketName": "storyflow-dev-input",
    "JobsTableName": "storyflow-dev-jobs",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(poll, "monotonic", fake.monotonic)
    monkeypatch.setattr(poll, "sleep", fake.sleep)
    return fake


def test_wait_until_returns_the_first_truthy_answer_backing_off_from_50ms_to_1s(clock: FakeClock) -> None:
    answers = iter([None, 0, "", *([None] * 5), "ready"])
    assert poll.wait_until(lambda: next(answers), 30, "ready") == "ready"
    assert clock.sleeps == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_wait_until_fails_saying_what_it_awaited_and_what_it_last_saw(clock: FakeClock) -> None:
    with pytest.raises(
        AssertionError, match=r"after 5s \(10 tries\) waiting for 3 segments done; last value: 0"
    ):
        poll.wait_until(lambda: 0, 5, "3 segments done")
    assert sum(clock.sleeps) == pytest.approx(5)  # never sleeps past the deadline


def test_wait_until_judges_the_probed_value_with_until_and_reports_it(clock: FakeClock) -> None:
    jobs = iter([{"status": "running"}, {"status": "completed"}])
    assert poll.wait_until(lambda: next(jobs), 5, "done", until=lambda job: job["status"] == "completed") == {
        "status": "completed"
    }
    with pytest.raises(
        AssertionError, match=r"waiting for the job to finish; last value: \{'status': 'running'\}"
    ):
        poll.wait_until(lambda: {"status": "running"}, 2, "the job to finish", until=lambda job: False)


def test_wait_until_treats_ignored_errors_as_not_yet(clock: FakeClock) -> None:
    calls = iter([ConnectionError("refused"), ConnectionError("refused"), {"status": "ok"}])

    def probe() -> Any:
        answer = next(calls)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert poll.wait_until(probe, 5, "health", ignore=(ConnectionError,)) == {"status": "ok"}

    def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(AssertionError, match=r"last value: ConnectionError\('down'\)"):
        poll.wait_until(down, 1, "health", ignore=(ConnectionError,))
    with pytest.raises(ConnectionError):  # any other error is the test's failure, at once
        poll.wait_until(down, 1, "health")


@pytest.fixture
def fake_stack(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """A deployed stack only as far as storyflow_cli.target.stack_outputs sees it; no AWS call is made."""
    asked: list[tuple[str, str | None]] = []

    def stack_outputs(stack: str, region: str | None) -> dict[str, str]:
        asked.append((stack, region))
        return dict(OUTPUTS)

    monkeypatch.delenv(API_URL_ENV, raising=False)  # the stack's own ApiUrl
    monkeypatch.setattr(storyflow_cli.target, "stack_outputs", stack_outputs)
    monkeypatch.setattr(storyflow_cli.target, "find_local_state", lambda start=None: None)
    monkeypatch.setattr(target_module, "have_credentials", lambda: True)
    return asked


def test_the_stack_target_is_built_from_the_stacks_outputs(fake_stack: list[tuple[str, str | None]]) -> None:
    target = from_stack("storyflow-dev", "eu-west-1")
    assert fake_stack == [("storyflow-dev", "eu-west-1")]
    assert target.local is None and target.stack == "storyflow-dev" and target.region == "eu-west-1"
    assert target.outputs == OUTPUTS
    assert target.api_url == OUTPUTS["ApiUrl"]
    # ... its API client signs (IAM auth on a real API Gateway), in the API's region
    assert target.api.target.signed and target.api.target.signing_region == "eu-west-1"
    assert target.client("s3").meta.region_name == "eu-west-1"
    assert target.client("s3") is target.client("s3")


def test_the_stack_targets_raw_requests_are_signed_and_physical_ids_come_from_the_stack(
    fake_stack: list[tuple[str, str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = from_stack("storyflow-dev", "eu-west-1")
    signed: list[tuple[str, str]] = []
    monkeypatch.setattr(
        target_module, "sign_request", lambda prepared, region: signed.append((prepared.url, region))
    )
    sent: list[requests.PreparedRequest] = []

    def send(prepared: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        sent.append(prepared)
        response = requests.Response()
        response.status_code = 200
        return response

    monkeypatch.setattr(target.api.session, "send", send)
    assert target.http("GET", "/health").status_code == 200
    assert signed == [(OUTPUTS["ApiUrl"] + "/health", "eu-west-1")]
    assert sent[0].url == OUTPUTS["ApiUrl"] + "/health"

    cloudformation = target.client("cloudformation")
    with Stubber(cloudformation) as stub:
        summary = {
            "ResourceType": "AWS::SNS::Topic",
            "ResourceStatus": "CREATE_COMPLETE",
            "LastUpdatedTimestamp": "2026-01-01T00:00:00Z",
        }
        stub.add_response(
            "list_stack_resources",
            {
                "StackResourceSummaries": [
                    {**summary, "LogicalResourceId": "AlarmTopic", "PhysicalResourceId": "arn:topic"},
                    {**summary, "LogicalResourceId": "Other"},
                ],
                "NextToken": "page-2",
            },
            {"StackName": "storyflow-dev"},
        )
        stub.add_response(
            "list_stack_resources",
            {
                "StackResourceSummaries": [
                    {**summary, "LogicalResourceId": "JobsTable", "PhysicalResourceId": "jobs"},
                ]
            },
            {"StackName": "storyflow-dev", "NextToken": "page-2"},
        )
        assert target.physical_id("AlarmTopic") == "arn:topic"
        assert target.physical_id("JobsTable") == "jobs"  # every page read, once
        with pytest.raises(AssertionError, match="has no resource Missing"):
            target.physical_id("Missing")


def test_a_stack_that_cannot_be_read_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(target_module, "have_credentials", lambda: False)
    with pytest.raises(storyflow_cli.target.CliError, match="no AWS credentials"):
        from_stack("storyflow-dev", "eu-west-1")


def test_against_a_stack_the_local_only_tests_are_skipped_and_the_rest_never_deploy_locally(
    tmp_path: Path,
) -> None:
    # Given STORYFLOW_STACK naming a stack, and no AWS credentials at all
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STORYFLOW_"))}
    env.update(
        {
            STACK_ENV: "nope",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    report = tmp_path / "report.xml"
    # When the integration tests run (all but this harness)
    modules = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests" / "integration").glob("test_*.py")
        if p.name != Path(__file__).name
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *modules, "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = run.stdout[-3000:] + run.stderr[-3000:]
    assert report.is_file(), output
    cases = {f"{c.get('classname')}.{c.get('name')}": c for c in ET.parse(report).getroot().iter("testcase")}
    skipped = {name: c.find("skipped") for name, c in cases.items() if c.find("skipped") is not None}
    errored = {name: c.find("error") for name, c in cases.items() if c.find("error") is not None}
    # Then the tests that need the local cloud are skipped, each saying so and why
    for expected in (
        "test_backend.test_backend_lives_while_pinged_stops_when_idle_and_keeps_its_rows",
        "test_backend.test_task_killed_from_outside_is_noticed_and_replaced_on_next_start",
        "test_backend.test_malformed_alarm_message_stops_nothing",
        "test_local_cloud.test_every_route_is_served_by_the_local_api_shim",
        "test_local_cloud.test_the_state_file_describes_the_running_cloud",
    ):
        assert any(name.endswith(expected) for name in skipped), (expected, sorted(skipped), output)
    for name, element in skipped.items():
        assert "STORYFLOW_STACK=nope: local cloud only: " in str(element.get("message")), (name, output)
    # ... and every other one fails at once, on the stack it cannot read: none ran against a local cloud
    assert errored, output
    assert set(skipped) | set(errored) == set(cases), output
    for name, element in errored.items():
        message = str(element.get("message")) + (element.text or "")
        assert "STORYFLOW_STACK=nope: no AWS credentials" in message, (name, message[:500])
    assert run.returncode != 0
