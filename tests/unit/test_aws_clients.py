"""storyflow.aws: one client per service, region and endpoint, however many threads ask at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from storyflow import aws


class SlowSession:
    """A boto3 Session whose client() takes a while, as a cold one does (service model, endpoint rules)."""

    def __init__(self) -> None:
        self.built: list[tuple[str, Any]] = []

    def client(self, service: str, **kwargs: Any) -> Any:
        time.sleep(0.05)
        made = object()
        self.built.append((service, made))
        return made


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> SlowSession:
    fake = SlowSession()
    monkeypatch.setattr(aws, "_CLIENTS", {})
    monkeypatch.setattr(aws, "_session", lambda: fake)
    return fake


def test_threads_that_ask_for_one_client_at_once_share_the_one_built(session: SlowSession) -> None:
    # Given four threads that all ask for the DynamoDB client at the same moment (a function's concurrent
    # first invocations in the local cloud, a handler's worker threads)
    start = threading.Barrier(4)

    def ask(_: int) -> Any:
        start.wait()
        return aws._client("dynamodb", "us-east-1", None)

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(ask, range(4)))
    # Then one client was built, and every thread got it
    assert [service for service, _ in session.built] == ["dynamodb"]
    assert all(client is session.built[0][1] for client in got)


def test_each_service_region_and_endpoint_has_its_own_client(session: SlowSession) -> None:
    # When clients are asked for two services, another region and another endpoint, and the first again
    first = aws._client("dynamodb", "us-east-1", None)
    others = [
        aws._client("s3", "us-east-1", None),
        aws._client("dynamodb", "eu-west-1", None),
        aws._client("dynamodb", "us-east-1", "http://127.0.0.1:5000"),
    ]
    # Then each is its own, and the first is reused
    assert len({id(client) for client in [first, *others]}) == 4
    assert aws._client("dynamodb", "us-east-1", None) is first
    assert len(session.built) == 4


def test_prepare_builds_a_handlers_clients_at_init_for_its_lookups(
    session: SlowSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a function's init environment (Lambda always sets AWS_REGION)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    # When its module prepares its clients
    aws.prepare("dynamodb", "s3")
    # Then they are built, and the handler's lookups find them without building more
    assert [service for service, _ in session.built] == ["dynamodb", "s3"]
    assert aws.client("s3") is session.built[1][1]
    assert aws.table("jobs").meta.client is session.built[0][1]
    assert len(session.built) == 2
    # and a lookup under another endpoint (a test's emulator) gets a client of its own
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4567")
    assert aws.client("s3") is not session.built[1][1]


def test_prepare_without_a_region_leaves_the_clients_to_their_first_use(
    session: SlowSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an environment with no region (a module imported by a test before its environment is set)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    # When the module prepares its clients  Then none is built
    aws.prepare("dynamodb", "s3")
    assert session.built == []
