"""A faster `stack`: the same moto account as tests/unit/conftest.py's, built once per test module.

Same contract as the shared fixture (tables built from template.yaml by the same helper, the two buckets,
the event bus, the Lambda environment), but building tables costs ~0.2 s a test and these modules have
~150 tests. So the account lives for the module and is emptied after every test instead: items, objects
and state machines (with their executions) are deleted. Import `stack` into a test module or conftest
to override the shared one there: `from tests.unit.api.moto_stack import _module_account, module_lived_stack`
(the fixture's name is `stack`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.s3.models import s3_backends
from moto.stepfunctions.models import stepfunctions_backends

from storyflow import aws
from tests.unit.conftest import ENV_TO_RESOURCE, REGION, create_account

PARTITION = "aws"


@pytest.fixture(scope="module")
def _module_account() -> Iterator[None]:
    with mock_aws():
        create_account()
        yield


def _empty_account() -> None:
    """Delete what a test wrote. Job items are cleared inside moto (pinned 5.2.5): nine API calls a test
    would cost more than the tests themselves; objects and state machines go through the API when any."""
    for table in dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables.values():
        table.items.clear()
    s3 = aws.client("s3")
    for bucket in (ENV_TO_RESOURCE["INPUT_BUCKET"], ENV_TO_RESOURCE["OUTPUT_BUCKET"]):
        if len(s3_backends[DEFAULT_ACCOUNT_ID][PARTITION].buckets[bucket].keys):
            for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
    if stepfunctions_backends[DEFAULT_ACCOUNT_ID][REGION].state_machines:
        sfn = aws.client("stepfunctions")
        for machine in sfn.list_state_machines()["stateMachines"]:
            sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])


@pytest.fixture(name="stack")
def module_lived_stack(_module_account: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Given a moto account holding the template's tables, the two buckets and the job event bus."""
    for env, name in ENV_TO_RESOURCE.items():
        monkeypatch.setenv(env, name)
    yield dict(ENV_TO_RESOURCE)
    _empty_account()  # runs after a failed test too
