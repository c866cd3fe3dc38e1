"""boto3 clients cached per service/region/endpoint: built by a handler's init (`prepare`) or on first use.

DynamoDB tables are `Table`s over the low-level client, not boto3's resource layer: the resource costs a
cold start about 0.1 s more than the client it wraps (it lists every service's resource model and loads the
table's: bench/cold_start.py), for the same calls.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


def _where() -> tuple[str | None, str | None]:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"), os.environ.get(
        "AWS_ENDPOINT_URL"
    )


# The codes S3 answers for an object (or bucket) that is not there: GetObject says NoSuchKey, HeadObject
# has no body and says 404, some SDK paths say NotFound.
OBJECT_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError (`ConditionalCheckFailedException`, `NoSuchKey`...); "" if none.

    The one place that reads `error.response["Error"]["Code"]`: callers compare the code, never the text.
    """
    return str(error.response.get("Error", {}).get("Code") or "")


def client(service: str) -> Any:
    """A boto3 client; honours AWS_ENDPOINT_URL so the local cloud and tests reach their emulator."""
    return _client(service, *_where())


def prepare(*services: str) -> None:
    """Builds the clients every invocation of a handler uses during its init, as AWS advises (Lambda runs
    init once per execution environment, before its first request; a client costs 10-200 ms, most in a
    session's first). A client only some invocations use is left to its first use: init is billed and
    delays the first request, for a client that invocation may not need.

    Invariant: it only fills the cache `client()` reads, for the init environment's region and endpoint;
    a lookup made under another environment (a test's) still builds its own client. Without a region in the
    environment (never so on Lambda) it does nothing, and the first lookup builds the client as before.
    """
    region, endpoint_url = _where()
    if region is not None:
        for service in services:
            _client(service, region, endpoint_url)


def table(name: str) -> Table:
    """A DynamoDB table with the item-level API of boto3's Table resource (native Python types)."""
    return Table(name, client("dynamodb"))


# Request parameters that hold items or attribute maps (native values in), and the answer's (typed out).
_ITEM_PARAMS = ("Item", "Key", "ExclusiveStartKey")
_VALUE_PARAMS = ("ExpressionAttributeValues",)
_ITEM_ANSWERS = ("Item", "Attributes", "LastEvaluatedKey")
_EXPRESSIONS = ("ConditionExpression", "KeyConditionExpression", "FilterExpression")


class Table:
    """The calls of boto3's `Table` resource that storyflow makes, on the low-level client.

    Invariants, as the resource's: items, keys and expression values go in as native Python values (a float
    is refused, use Decimal) and come out with numbers as Decimal; `TableName` is this table's. Expressions
    are strings; a call given boto3's condition objects, and any other attribute (`batch_writer`...), goes
    to the real resource Table, built on first use. `meta.client` is the low-level client.
    """

    def __init__(self, name: str, dynamodb: Any) -> None:
        self.name = self.table_name = name
        self.meta = SimpleNamespace(client=dynamodb)
        self._resource: Any = None

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("put_item", kwargs)

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("get_item", kwargs)

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("update_item", kwargs)

    def delete_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("delete_item", kwargs)

    def query(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("query", kwargs)

    def scan(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("scan", kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._real(), name)

    def _real(self) -> Any:
        if self._resource is None:
            self._resource = _dynamodb(*_where()).Table(self.name)
        return self._resource

    def _call(self, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if any(not isinstance(kwargs.get(name, ""), str) for name in _EXPRESSIONS):
            answer: dict[str, Any] = getattr(self._real(), operation)(**kwargs)
            return answer
        serialize = _serializer().serialize
        request = dict(kwargs, TableName=self.name)
        for name in _ITEM_PARAMS + _VALUE_PARAMS:
            if name in request:
                request[name] = {key: serialize(value) for key, value in request[name].items()}
        answer = getattr(self.meta.client, operation)(**request)
        deserialize = _deserializer().deserialize
        for name in _ITEM_ANSWERS:
            if name in answer:
                answer[name] = {key: deserialize(value) for key, value in answer[name].items()}
        if "Items" in answer:
            answer["Items"] = [
                {key: deserialize(value) for key, value in item.items()} for item in answer["Items"]
            ]
        return answer


@lru_cache(maxsize=1)
def _serializer() -> Any:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


@lru_cache(maxsize=1)
def _deserializer() -> Any:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


# One session per process, made on first use: a new Session parses botocore's endpoint rules and every service
# model again (about 0.1 s per client on a cold start: bench/cold_start.py). A Session is not thread-safe for
# creating clients (the clients are), hence the lock; threads that ask for the same client at once (a
# handler's worker threads, the local cloud's concurrent invocations of one function) get the one client the
# first of them built, not one each.
_SESSION_LOCK = threading.Lock()
_CLIENTS: dict[tuple[str, str | None, str | None], Any] = {}


@lru_cache(maxsize=1)
def _session() -> Any:
    return boto3.session.Session()


def _client(service: str, region: str | None, endpoint_url: str | None) -> Any:
    key = (service, region, endpoint_url)
    found = _CLIENTS.get(key)
    if found is None:
        with _SESSION_LOCK:
            found = _CLIENTS.get(key)
            if found is None:
                found = _CLIENTS[key] = _session().client(
                    service, region_name=region, endpoint_url=endpoint_url, config=_CONFIG
                )
    return found


@lru_cache(maxsize=8)
def _dynamodb(region: str | None, endpoint_url: str | None) -> Any:
    with _SESSION_LOCK:
        return _session().resource("dynamodb", region_name=region, endpoint_url=endpoint_url, config=_CONFIG)
