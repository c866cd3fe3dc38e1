"""Lazily created boto3 clients, cached per service/region/endpoint (no import-time env reads)."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
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


def table(name: str) -> Any:
    """A DynamoDB Table resource (item-level API with native Python types)."""
    return _dynamodb(*_where()).Table(name)


# One session per process, made on first use: a new Session parses botocore's endpoint rules and every service
# model again (about 0.1 s per client on a cold start: bench/cold_start.py). A Session is not thread-safe for
# creating clients (the clients are), hence the lock.
_SESSION_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _session() -> Any:
    return boto3.session.Session()


@lru_cache(maxsize=64)
def _client(service: str, region: str | None, endpoint_url: str | None) -> Any:
    with _SESSION_LOCK:
        return _session().client(service, region_name=region, endpoint_url=endpoint_url, config=_CONFIG)


@lru_cache(maxsize=8)
def _dynamodb(region: str | None, endpoint_url: str | None) -> Any:
    with _SESSION_LOCK:
        return _session().resource("dynamodb", region_name=region, endpoint_url=endpoint_url, config=_CONFIG)
