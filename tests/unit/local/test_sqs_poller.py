"""SQS → Lambda: batches, partial batch failures, redrive to the dead-letter queue."""

from __future__ import annotations

import json

from storyflow_local import LocalCloud
from storyflow_local.sqs_poller import failed_ids
from tests.unit.local.support import wait_for


def test_partial_batch_failures_go_back_to_the_queue_then_to_the_dlq(app_cloud: LocalCloud) -> None:
    # Given the batch function on the work queue (maxReceiveCount 2, VisibilityTimeout 30 s → 0.5 s locally)
    sqs = app_cloud.client("sqs")
    queue, dlq = app_cloud.outputs["WorkQueueUrl"], app_cloud.outputs["DeadLetterQueueUrl"]
    # When two good messages and a bad one are sent
    for body in ({"n": 1}, {"n": 2}, {"fail": True}):
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
    # Then the good ones were processed once
    table = app_cloud.outputs["TableName"]

    def processed() -> list[dict]:
        items = app_cloud.client("dynamodb").scan(TableName=table)["Items"]
        return [json.loads(i["body"]["S"]) for i in items if i["kind"]["S"] == "batch"]

    assert sorted(b["n"] for b in wait_for(lambda: len(processed()) == 2 and processed())) == [1, 2]
    # And the bad one was received twice, then moved to the dead-letter queue
    moved = wait_for(lambda: sqs.receive_message(QueueUrl=dlq).get("Messages"), timeout=15)
    assert json.loads(moved[0]["Body"]) == {"fail": True}


def test_which_messages_fail() -> None:
    ids = ["a", "b"]
    assert failed_ids("{}", True, ids, True) == {"a", "b"}
    assert failed_ids('{"batchItemFailures": [{"itemIdentifier": "b"}]}', False, ids, True) == {"b"}
    assert failed_ids('{"batchItemFailures": [{"itemIdentifier": "b"}]}', False, ids, False) == set()
    assert failed_ids('{"batchItemFailures": [{"itemIdentifier": "zz"}]}', False, ids, True) == {"a", "b"}
    assert failed_ids("null", False, ids, True) == set()
