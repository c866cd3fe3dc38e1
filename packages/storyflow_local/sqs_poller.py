"""SQS → Lambda event source mappings, polled like the Lambda service does.

moto invokes the function inside SendMessage, one message at a time, and ignores the response. Here
a poller receives batches (`BatchSize`, default 10) with the queue's visibility timeout, invokes the
function with the AWS SQS event, deletes what succeeded and honours `ReportBatchItemFailures`
(`{"batchItemFailures": [{"itemIdentifier": id}]}`). Failed messages become visible again after the
visibility timeout scaled by `time_scale`, so `maxReceiveCount` moves them to the dead-letter queue.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from storyflow_local.context import LocalContext
from storyflow_local.lambda_adapter import LambdaAdapter

log = logging.getLogger("storyflow_local.sqs")

_suppress = threading.local()


def _attribute(value: dict[str, Any]) -> dict[str, Any]:
    data_type = value.get("data_type") or value.get("DataType") or "String"
    out: dict[str, Any] = {"dataType": data_type, "stringListValues": [], "binaryListValues": []}
    if "string_value" in value or "StringValue" in value:
        out["stringValue"] = value.get("string_value", value.get("StringValue"))
    if "binary_value" in value or "BinaryValue" in value:
        out["binaryValue"] = value.get("binary_value", value.get("BinaryValue"))
    return out


def sqs_record(message: Any, queue_arn: str, region: str) -> dict[str, Any]:
    attributes = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": str(message.sender_id),
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    if message.group_id:
        attributes["MessageGroupId"] = message.group_id
    if message.deduplication_id:
        attributes["MessageDeduplicationId"] = message.deduplication_id
    if message.sequence_number:
        attributes["SequenceNumber"] = str(message.sequence_number)
    return {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {k: _attribute(v) for k, v in (message.message_attributes or {}).items()},
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_ids(result_payload: str, errored: bool, message_ids: list[str], partial: bool) -> set[str]:
    """Which messages of a batch go back to the queue."""
    if errored:
        return set(message_ids)
    if not partial:
        return set()
    try:
        response = json.loads(result_payload)
    except ValueError:
        return set(message_ids)
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return set()
    failures = set()
    for item in response["batchItemFailures"]:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in message_ids:
            return set(message_ids)  # an invalid response fails the whole batch, like AWS
        failures.add(identifier)
    return failures


class SqsPoller:
    def __init__(self, ctx: LocalContext, lambdas: LambdaAdapter) -> None:
        self.ctx = ctx
        self.lambdas = lambdas
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    def install(self) -> None:
        from moto.sqs.models import Queue

        original_add = Queue.add_message

        def add_message(queue: Any, message: Any) -> None:
            _suppress.active = True  # moto would invoke the function right here, synchronously
            try:
                original_add(queue, message)
            finally:
                _suppress.active = False

        def get_mappings(queue: Any) -> dict[str, Any]:
            if getattr(_suppress, "active", False):
                return {}
            mappings: dict[str, Any] = queue.__dict__.setdefault("_local_esm", {})
            return mappings

        def set_mappings(queue: Any, value: dict[str, Any]) -> None:
            queue.__dict__["_local_esm"] = value

        self.ctx.patches.set(Queue, "add_message", add_message)
        self.ctx.patches.set(Queue, "lambda_event_source_mappings", property(get_mappings, set_mappings))
        self.ctx.dispatcher.loop("sqs-poller", self.ctx.config.sqs_poll_seconds, self.tick)

    def tick(self) -> None:
        from moto.awslambda.models import lambda_backends
        from moto.sqs.models import sqs_backends

        backend = lambda_backends[self.ctx.account_id][self.ctx.region]
        sqs = sqs_backends[self.ctx.account_id][self.ctx.region]
        for esm in list(backend._event_source_mappings.values()):
            arn = str(esm.event_source_arn)
            if ":sqs:" not in arn or not esm.enabled:
                continue
            limit = int((esm.scaling_config or {}).get("MaximumConcurrency", 5))
            with self._lock:
                if self._in_flight.get(esm.uuid, 0) >= limit:
                    continue
            queue_name = arn.rsplit(":", 1)[-1]
            try:
                queue: Any = sqs.get_queue(queue_name)
            except Exception:
                continue
            messages = sqs.receive_message(
                queue_name, int(esm.batch_size or 10), 0, int(queue.visibility_timeout or 30)
            )
            if not messages:
                continue
            with self._lock:
                self._in_flight[esm.uuid] = self._in_flight.get(esm.uuid, 0) + 1
            self.ctx.dispatcher.submit(f"sqs batch → {esm.function_arn}", self._deliver, esm, queue, messages)

    def _deliver(self, esm: Any, queue: Any, messages: list[Any]) -> None:
        from moto.awslambda.models import lambda_backends
        from moto.core.utils import unix_time_millis
        from moto.sqs.models import sqs_backends

        try:
            fn = lambda_backends[self.ctx.account_id][self.ctx.region]._lambdas.get_arn(esm.function_arn)
            event = {"Records": [sqs_record(m, queue.queue_arn, self.ctx.region) for m in messages]}
            result = self.lambdas.invoke(fn, event)
            partial = "ReportBatchItemFailures" in (esm.function_response_types or [])
            failed = failed_ids(result.payload, result.errored, [m.id for m in messages], partial)
            sqs = sqs_backends[self.ctx.account_id][self.ctx.region]
            retry_ms = float(queue.visibility_timeout or 30) * self.ctx.scale * 1000
            for message in messages:
                if message.id not in failed:
                    sqs.delete_message(queue.name, message.receipt_handle)
                    continue
                for original in queue._messages:
                    if original.had_receipt_handle(message.receipt_handle):
                        original.visible_at = unix_time_millis() + retry_ms
            if failed:
                log.info(
                    "sqs %s: %d of %d messages failed; visible again in %.1fs",
                    queue.name,
                    len(failed),
                    len(messages),
                    retry_ms / 1000,
                )
        finally:
            with self._lock:
                self._in_flight[esm.uuid] -= 1
