"""The local cloud's speed fixes keep AWS's behaviour: each test fails without its fix."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3
import pytest
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback,
)

from storyflow_local import LocalCloud, stepfunctions
from storyflow_local.ecs_agent import plan_containers
from tests.unit.local.support import run_execution


def test_a_sync_ecs_state_resumes_when_its_task_stops_not_at_its_next_poll(
    app_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given every `.sync` poll (moto's loop and the local one) an hour apart
    monkeypatch.setattr(state_task_service_callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", 3600.0)
    monkeypatch.setattr(stepfunctions, "SYNC_POLL_SECONDS", 3600.0)
    # When a state machine runs an ECS task with ecs:runTask.sync
    result = run_execution(
        app_cloud, app_cloud.outputs["EcsStateMachineArn"], {"command": ["--exit", "0"], "job_id": "wake"}
    )
    # Then it resumed when the task stopped (the ECS agent says when), long before any poll was due
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"exit": 0, "reason": "Essential container in task exited"}


def test_a_schedule_only_rule_never_fires_on_events(
    app_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = app_cloud.client("events")
    target = {"Id": "t", "Arn": app_cloud.outputs["EcsStateMachineArn"], "RoleArn": _role(app_cloud)}
    # Given a rule with only a schedule (AWS: fires on its schedule only; moto: on every event too)
    events.put_rule(Name="speed-schedule-only", ScheduleExpression="rate(1 day)")
    events.put_targets(Rule="speed-schedule-only", Targets=[target])
    # And a rule whose pattern matches the event below
    pattern = {"source": ["speed.test"]}
    events.put_rule(Name="speed-pattern", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="speed-pattern", Targets=[target])
    submitted: list[str] = []
    dispatcher = app_cloud.ctx.dispatcher  # type: ignore[union-attr]
    original = dispatcher.submit

    def record(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        submitted.append(what)
        return None if what.startswith("rule speed-") else original(what, fn, *args, **kwargs)

    monkeypatch.setattr(dispatcher, "submit", record)
    try:
        # When an event is put on the default bus (rules deliver while PutEvents runs)
        events.put_events(Entries=[{"Source": "speed.test", "DetailType": "Ping", "Detail": "{}"}])
    finally:
        for rule in ("speed-schedule-only", "speed-pattern"):
            events.remove_targets(Rule=rule, Ids=["t"])
            events.delete_rule(Name=rule)
    # Then the pattern rule delivered it and the schedule-only rule did not
    ours = [what for what in submitted if what.startswith("rule speed-")]
    assert ours == [f"rule speed-pattern → {target['Arn']}"]


def _role(cloud: LocalCloud) -> str:
    return f"arn:aws:iam::{cloud.ctx.account_id}:role/speed-test"  # type: ignore[union-attr]


def test_handler_sessions_share_one_botocore_loader(app_cloud: LocalCloud) -> None:
    # Given the local cloud is running (its Lambda adapter is installed)
    # When two handlers each build their clients from a new boto3 Session (each function has its own)
    first, second = boto3.session.Session(), boto3.session.Session()
    loader = first._session.get_component("data_loader")
    # Then both read service models through one Loader, which parsed them once
    assert second._session.get_component("data_loader") is loader
    # And its search path is still the data directories once each (boto3 adds its own per Session)
    assert len(loader.search_paths) == len(set(loader.search_paths))
    # And clients and resources still build from it
    assert first.client("s3", region_name="us-east-1").meta.service_model.service_name == "s3"
    assert second.resource("dynamodb", region_name="us-east-1").meta.service_name == "dynamodb"


def test_server_containers_start_as_new_processes_and_job_steps_may_fork_warm(app_cloud: LocalCloud) -> None:
    # Given a server container (port mappings: found from outside by its environment in /proc) and a step
    definitions = [
        {"name": "server", "image": "x", "entryPoint": ["true"], "portMappings": [{"containerPort": 8000}]},
        {"name": "step", "image": "x", "entryPoint": ["true"]},
    ]
    # When they are planned
    server, step = plan_containers(definitions, None, app_cloud.ctx)  # type: ignore[arg-type]
    # Then only the step may fork from a warm zygote
    assert (server.warm, step.warm) == (False, True)


def test_endpoints_are_in_service_once_deployed_before_any_invocation(app_cloud: LocalCloud) -> None:
    from moto.sagemaker.models import sagemaker_backends

    # Given the fixture app deployed, once the local cloud's background start is done
    assert app_cloud.wait_until_warm(60)
    # Then every endpoint's model server runs and answers /ping (on AWS an endpoint is InService only
    # then), whether it was invoked yet or not
    assert app_cloud.ctx is not None
    names = list(sagemaker_backends[app_cloud.ctx.account_id][app_cloud.region].endpoints)
    assert names
    for name in names:
        server = app_cloud.sagemaker.servers[name]
        assert server.process is not None and server.process.poll() is None
        with urllib.request.urlopen(f"{server.url}/ping", timeout=10) as response:
            assert response.status == 200
