"""boto3 clients bound to the emulator (explicit endpoint and credentials; never the process env)."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from storyflow_local.server import FAKE_CREDENTIALS

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 2},
    inject_host_prefix=False,  # e.g. StartSyncExecution's "sync-" prefix: the emulator is an IP address
    max_pool_connections=64,
    connect_timeout=5,
    read_timeout=900,
)


class Clients:
    """A cache of clients for one endpoint; thread-safe (boto3 sessions are not, clients are)."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._session: Any = boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=region,
        )
        self._cache: dict[tuple[str, str, bool, bool], Any] = {}
        self._lock = threading.Lock()

    def get(
        self, service: str, region: str | None = None, *, validate: bool = True, retries: bool = True
    ) -> Any:
        """A client; `validate=False, retries=False` is how Step Functions' integrations call services."""
        key = (service, region or self.region, validate, retries)
        with self._lock:
            client = self._cache.get(key)
            if client is None:
                config = _CONFIG
                if not validate:
                    config = config.merge(Config(parameter_validation=False))
                if not retries:
                    config = config.merge(Config(retries={"total_max_attempts": 1}))
                client = self._session.client(
                    service, region_name=key[1], endpoint_url=self.endpoint_url, config=config
                )
                self._cache[key] = client
            return client
