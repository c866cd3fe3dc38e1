"""The `sam local invoke` recipes cannot rot: every event under tests/events/ goes to its function's real
handler, in-process, over moto; every function folder has at least one event and every template function
(README "Debug a function") has a recipe.

A handler passes when it returns, or raises one of storyflow's typed errors (the event was parsed and
reached the logic: e.g. a job that is not in this empty account). A parse or validation error, a KeyError on
a field the handler reads, anything untyped, fails: the event no longer has the shape the handler takes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from storyflow import aws
from storyflow.errors import StoryflowError
from tests.support.functions import EVENTS, ROOT, FakeContext, load_event, load_handler
from tests.support.template import load_template

# event file -> (functions/<folder>, template logical id). One line per event: a new event needs a line here.
RECIPES: dict[str, tuple[str, str]] = {
    "api_cancel_job.json": ("api", "ApiFunction"),
    "api_get_job.json": ("api", "ApiFunction"),
    "api_health.json": ("api", "ApiFunction"),
    "api_job_outputs.json": ("api", "ApiFunction"),
    "api_list_jobs.json": ("api", "ApiFunction"),
    "api_list_workflows.json": ("api", "ApiFunction"),
    "api_submit_stereo.json": ("api", "ApiFunction"),
    "api_submit_video.json": ("api", "ApiFunction"),
    "job_status_completed.json": ("job_status", "JobStatusFunction"),
    "job_status_failed.json": ("job_status", "JobStatusFunction"),
    "s3_object_created.json": ("on_upload", "OnUploadFunction"),
    "schedule_expire_uploads.json": ("expire_uploads", "ExpireUploadsFunction"),
    "submit_inference_segment.json": ("submit_inference", "SubmitInferenceFunction"),
    "sagemaker_async_success.json": ("inference_result", "InferenceResultFunction"),
    "sagemaker_async_failure.json": ("inference_result", "InferenceResultFunction"),
    "sqs_tts_raw.json": ("intake", "TtsIntakeFunction"),
    "sqs_tts_sns.json": ("intake", "TtsIntakeFunction"),
    "sqs_video_raw.json": ("intake", "VideoIntakeFunction"),
    "sqs_video_sns.json": ("intake", "VideoIntakeFunction"),
    "task_start.json": ("task_manager", "TaskManagerFunction"),
    "task_start_ping.json": ("task_manager", "TaskManagerFunction"),
    "task_start_bad_action.json": ("task_manager", "TaskManagerFunction"),
    "alarm_task_ping.json": ("task_monitor", "TaskMonitorFunction"),
    "alarm_malformed.json": ("task_monitor", "TaskMonitorFunction"),
    "task_stopped.json": ("task_monitor", "TaskMonitorFunction"),
    "story_scenes_given.json": ("story_scenes", "StoryScenesFunction"),
}
PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
JOB_KINDS = {"TtsIntakeFunction": "tts", "VideoIntakeFunction": "video"}


def template_functions() -> dict[str, str]:
    """{logical id: functions/<folder>} of every AWS::Serverless::Function in template.yaml."""
    found = {}
    for name, resource in load_template()["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            found[name] = str(resource["Properties"]["CodeUri"]).strip("/").removeprefix("functions/")
    return found


def test_every_event_file_has_a_recipe_and_every_recipe_a_file() -> None:
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(RECIPES)


def test_every_function_folder_has_an_event() -> None:
    folders = {p.parent.name for p in (ROOT / "functions").glob("*/app.py")}
    covered = {folder for folder, _ in RECIPES.values()}
    assert folders - covered == set(), "a function folder without an event under tests/events/"


def test_every_template_function_has_an_event_and_its_recipe_names_it() -> None:
    functions = template_functions()
    covered = {logical for _, logical in RECIPES.values()}
    assert set(functions) - covered == set(), "a template function without a `sam local invoke` recipe"
    for folder, logical in RECIPES.values():
        assert functions[logical] == folder, f"{logical} is functions/{functions[logical]}, not {folder}"


@pytest.fixture
def world(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Given the moto account with a state machine per workflow and a dead-letter queue in the env."""
    sfn = aws.client("stepfunctions")
    for kind in ("stereo", "tts", "video", "story"):
        arn = sfn.create_state_machine(
            name=f"storyflow-{kind}", definition=PASS, roleArn="arn:aws:iam::123456789012:role/states"
        )["stateMachineArn"]
        monkeypatch.setenv(f"{kind.upper()}_STATE_MACHINE_ARN", arn)
    dlq = boto3.client("sqs").create_queue(QueueName="storyflow-dlq")["QueueUrl"]
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dlq)
    yield stack


@pytest.mark.parametrize("event_file", sorted(RECIPES))
def test_the_handler_takes_the_event(
    event_file: str, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the function's handler and its environment, When it is invoked with the stored event
    folder, logical = RECIPES[event_file]
    if logical in JOB_KINDS:
        monkeypatch.setenv("JOB_KIND", JOB_KINDS[logical])
    handler = load_handler(folder)
    # Then it answers, or refuses with a typed error after parsing the event
    try:
        answer = handler(load_event(event_file), FakeContext(function_name=logical))
    except StoryflowError:
        return
    assert answer is None or isinstance(answer, dict | list | str)
