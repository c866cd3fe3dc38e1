"""The local cloud's speed fixes keep AWS's behaviour: each test fails without its fix."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any

import boto3
import moto.core.responses
import moto.core.utils
import moto.dynamodb.responses
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


def test_moto_reads_a_services_model_without_listing_every_service_again(
    app_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import moto.core.utils

    from storyflow_local import moto_speed

    # Given the local cloud's background start done (the shared Loader has listed botocore's models)
    assert app_cloud.wait_until_warm(60)
    listed: list[str] = []
    real_listdir = os.listdir

    here = threading.get_ident()

    def listdir(path: Any = ".") -> list[str]:
        if threading.get_ident() == here:  # not the local cloud's other threads (e.g. /proc scans)
            listed.append(str(path))
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", listdir)
    # When moto reads the models of two services it had not read yet (a service's first request does)
    models = [moto.core.utils._load_service_model(name, "service-2") for name in ("kafka", "glacier")]
    # Then it got them (the same as botocore's own), listing at most their own directories, not all ~400
    assert [m["metadata"]["serviceId"] for m in models] == ["Kafka", "Glacier"]
    assert len(listed) < 10
    assert moto_speed.shared_loader() is moto_speed.shared_loader()


def test_the_stacks_services_models_are_read_before_their_first_request(
    app_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    import moto.core.utils

    from storyflow_local import moto_speed

    # Given the fixture app (state machines, a SageMaker endpoint) deployed and its background start done
    assert app_cloud.wait_until_warm(60)
    assert app_cloud.deployment is not None
    types = {resource.type for resource in app_cloud.deployment.resources.values()}
    assert {"AWS::StepFunctions::StateMachine", "AWS::SageMaker::Endpoint"} <= types

    # When moto answers the first request of Step Functions or of the endpoint's runtime, reading no file
    def refuse(service_name: str, model_name: str) -> Any:
        raise AssertionError(f"{service_name} {model_name} read at request time")

    monkeypatch.setattr(moto.core.utils, "_load_service_model", refuse)
    # Then their models are moto's already (parsed in the background at deploy)
    for name in ("stepfunctions", "sagemaker-runtime"):
        assert moto.core.utils.get_service_model(name).service_name == name
    assert "sagemaker-runtime" in moto_speed.stack_services(["AWS::SageMaker::Endpoint"])


def test_each_execution_gets_a_fresh_program_from_a_definition_parsed_once(
    app_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
    from moto.stepfunctions.parser.asl.parse.asl_parser import (
        AmazonStateLanguageParser,
        ASLParserException,
    )

    # Given the local cloud running, and ANTLR's parses counted
    parses: list[int] = []
    real = ASLParser.state_machine

    def counted(parser: Any) -> Any:
        parses.append(1)
        return real(parser)

    monkeypatch.setattr(ASLParser, "state_machine", counted)
    definition = json.dumps(
        {"StartAt": "Pass", "States": {"Pass": {"Type": "Pass", "Result": {"n": 1}, "End": True}}}
    )
    # When the same definition is parsed for three executions
    programs = [AmazonStateLanguageParser.parse(definition) for _ in range(3)]
    # Then ANTLR parsed it once, and each execution has its own program (its components hold its state)
    assert len(parses) == 1
    assert len({id(program) for program, _ in programs}) == 3
    # And a definition with a syntax error is refused every time, never kept
    for _ in range(2):
        with pytest.raises(ASLParserException):
            AmazonStateLanguageParser.parse('{"StartAt": "X", "States": {"X": {"Type": 7}}}')
    assert len(parses) == 3
    # And executions of one state machine, one after another, each run from the start
    arn = app_cloud.outputs["EcsStateMachineArn"]
    for job in ("fresh-1", "fresh-2"):
        result = run_execution(app_cloud, arn, {"command": ["--exit", "0"], "job_id": job})
        assert result["status"] == "SUCCEEDED"


def test_the_started_heap_is_out_of_the_collectors_view(app_cloud: LocalCloud) -> None:
    import gc

    # Given the local cloud's background start done
    assert app_cloud.wait_until_warm(60)
    # Then what that start left (moto's models, the functions' modules) is frozen: a full collection in
    # the middle of a job no longer walks it while every emulated service waits for it
    frozen = gc.get_freeze_count()
    assert frozen > 100_000
    assert len(gc.get_objects(generation=2)) < frozen / 4


def test_a_stopped_warm_start_gives_its_heap_back_to_the_collector() -> None:
    import gc
    from types import SimpleNamespace
    from typing import cast

    from storyflow_local.warm_start import WarmStart

    start = WarmStart(cast(Any, SimpleNamespace(launcher=None)), cast(Any, None), cast(Any, None))
    # Given a warm start that froze the heap once its background work was done
    start._freeze([])
    assert gc.get_freeze_count() > 0
    # When it stops (the cloud is torn down), the frozen objects can be collected again
    start.stop()
    assert gc.get_freeze_count() == 0
    # and a background start that finishes after the stop freezes nothing
    start._freeze([])
    assert gc.get_freeze_count() == 0


def _answers(calls: list[tuple[Any, str, dict[str, Any]]]) -> list[Any]:
    """Each call's answer without its per-request metadata (request id, retries)."""
    return [
        {k: v for k, v in getattr(client, operation)(**kwargs).items() if k != "ResponseMetadata"}
        for client, operation, kwargs in calls
    ]


def test_moto_answers_the_same_with_its_per_request_work_done_once(
    app_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    from moto.core.serialize import XFormedAttributePicker
    from moto.utilities.aws_headers import gen_amzn_requestid_long

    # Given resources whose answers moto serializes from dicts (DynamoDB's items) and from model objects
    # (Step Functions, SQS, SNS, DynamoDB's table description), in the local cloud (its moto patched)
    name = f"speed-{uuid.uuid4().hex[:8]}"
    ddb, sfn, sqs, sns = (app_cloud.client(s) for s in ("dynamodb", "stepfunctions", "sqs", "sns"))
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    queue = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "7"})["QueueUrl"]
    topic = sns.create_topic(Name=name)["TopicArn"]
    try:
        ddb.put_item(TableName=name, Item={"k": {"S": "a"}, "m": {"M": {"n": {"N": "1"}, "l": {"L": []}}}})
        machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
        calls: list[tuple[Any, str, dict[str, Any]]] = [
            (ddb, "get_item", {"TableName": name, "Key": {"k": {"S": "a"}}}),
            (ddb, "describe_table", {"TableName": name}),
            (sfn, "describe_state_machine", {"stateMachineArn": machine}),
            (sfn, "list_state_machines", {}),
            (sqs, "get_queue_attributes", {"QueueUrl": queue, "AttributeNames": ["All"]}),
            (sns, "get_topic_attributes", {"TopicArn": topic}),
        ]
        # When they are read with the method lists, request ids and attribute keys done once, twice
        once, again = _answers(calls), _answers(calls)
        listed = moto.core.responses.method_names_from_class(moto.dynamodb.responses.DynamoHandler)
        ids = {moto.core.responses.gen_amzn_requestid_long() for _ in range(50)}
        # and then with moto's own code
        monkeypatch.setattr(
            moto.core.responses, "method_names_from_class", moto.core.utils.method_names_from_class
        )
        monkeypatch.setattr(moto.core.responses, "gen_amzn_requestid_long", gen_amzn_requestid_long)
        remembered = XFormedAttributePicker.get_possible_keys
        monkeypatch.setattr(XFormedAttributePicker, "get_possible_keys", remembered.__wrapped__)
        plain = _answers(calls)
    finally:
        ddb.delete_table(TableName=name)
        sqs.delete_queue(QueueUrl=queue)
        sns.delete_topic(TopicArn=topic)
    # Then every answer is moto's own, the first time and from what was remembered
    assert once == plain and again == plain
    # and a handler's methods, and request ids of 52 letters and digits, one per request, are as moto's
    assert listed == moto.core.utils.method_names_from_class(moto.dynamodb.responses.DynamoHandler)
    assert len(ids) == 50 and all(len(i) == 52 and i.isalnum() and i.isascii() for i in ids)


def test_remembered_attribute_keys_are_per_shape_and_parent() -> None:
    from moto.core.model import ShapeResolver
    from moto.core.serialize import AttributePickerContext, XFormedAttributePicker

    from storyflow_local import moto_speed

    # Given one member name under two structures: under `Topic` it may be read as `name` (moto drops the
    # structure's name from a member's), under `Queue` it may not
    member = {"TopicName": {"shape": "String"}}
    resolver = ShapeResolver(
        {
            "String": {"type": "string"},
            "Topic": {"type": "structure", "members": member},
            "Queue": {"type": "structure", "members": member},
        }
    )
    picker = XFormedAttributePicker()
    picker.get_possible_keys = moto_speed.remembered_keys(XFormedAttributePicker.get_possible_keys).__get__(
        picker
    )

    class Model:
        name = "the topic's name"

    def pick(parent_name: str) -> Any:
        parent = resolver.get_shape_by_name(parent_name)
        shape = parent.members["TopicName"]
        shape.parent = parent  # as moto's serializer sets it
        return picker(AttributePickerContext(obj=Model(), key="TopicName", shape=shape))

    # When the attribute is picked under each, twice  Then each answer is its structure's, remembered or not
    assert [pick("Topic"), pick("Queue"), pick("Topic"), pick("Queue")] == ["the topic's name", None] * 2


def test_task_services_are_read_from_every_task_state_of_a_definition() -> None:
    from storyflow_local.warm_start import task_services

    # Given definitions with Task states at the top, in a Map's item processor and its reader, in a branch
    first = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:updateItem", "Next": "M"},
            "M": {
                "Type": "Map",
                "ItemReader": {"Resource": "arn:aws:states:::s3:getObject"},
                "ItemProcessor": {
                    "StartAt": "I",
                    "States": {
                        "I": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}
                    },
                },
                "End": True,
            },
        },
    }
    second = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "S",
                        "States": {
                            "S": {
                                "Type": "Task",
                                "Resource": "arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpointAsync",
                                "End": True,
                            }
                        },
                    }
                ],
                "Next": "D",
            },
            "D": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem", "End": True},
        },
    }
    # When their services are listed  Then each appears once, by its name in the ARN; a broken one is skipped
    definitions = [json.dumps(first), "{not json", json.dumps(second)]
    assert task_services(definitions) == ["dynamodb", "s3", "lambda", "sagemakerruntime"]


def test_the_interpreters_clients_are_built_at_deploy(
    app_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storyflow_local.stepfunctions import interpreter_client

    # Given the fixture app deployed and its background start done
    assert app_cloud.wait_until_warm(60)

    # When its Task states' services are asked for their interpreter clients, building none is allowed
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"client {args} built at request time")

    monkeypatch.setattr(app_cloud.ctx.clients._session, "client", refuse)
    # Then each is there already, the one a task gets
    clients = [interpreter_client(app_cloud.ctx, s) for s in ("sagemakerruntime", "ecs", "lambda", "s3")]
    assert [c.meta.service_model.service_name for c in clients] == [
        "sagemaker-runtime",
        "ecs",
        "lambda",
        "s3",
    ]


def test_moto_does_not_warn_that_tolerated_failures_have_no_effect(
    app_cloud: LocalCloud, caplog: pytest.LogCaptureFixture
) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    # Given a Map with tolerated failures, which the local cloud applies
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ToleratedFailurePercentage": 10.0,
                "ToleratedFailureCount": 1,
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    # When moto's parser builds its program, as it does for every execution
    with caplog.at_level(logging.WARNING, logger="moto.stepfunctions.parser.asl.parse.preprocessor"):
        AmazonStateLanguageParser.parse(json.dumps(definition))
    # Then it does not say that they have no effect
    assert not [r for r in caplog.records if "currently have no effect" in r.getMessage()]
