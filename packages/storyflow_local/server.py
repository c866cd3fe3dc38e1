"""The embedded AWS: moto's ThreadedMotoServer on 127.0.0.1, on a free port, in this process."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

from storyflow_local.config import DEFAULT_ACCOUNT_ID

log = logging.getLogger("storyflow_local")

HOST = "127.0.0.1"

# What every client of the emulator needs: boto3 clients, moto's Step Functions interpreter (MOTO_PORT),
# in-process handlers and child processes.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def client_environment(endpoint_url: str, port: int, region: str) -> dict[str, str]:
    """Environment variables that point an AWS SDK (or moto itself) at the emulator."""
    return {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "MOTO_PORT": str(port),
        "MOTO_HOST": HOST,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


class MotoServer:
    """Starts moto in a thread; `environment` holds what clients need; `stop()` frees the port.

    moto keeps its state in module-level backends, so one server per process at a time.
    """

    def __init__(self, region: str) -> None:
        self.region = region
        self.account_id = DEFAULT_ACCOUNT_ID
        self.port = 0
        self._server: Any = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def environment(self) -> dict[str, str]:
        return client_environment(self.endpoint_url, self.port, self.region)

    def start(self) -> None:
        share_endpoint_data()
        from moto.core.config import default_user_config
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        reset_moto()
        # The executing Step Functions backend (the ASL interpreter), not the recording one.
        default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
        # Docker-mode Lambda: every invoke goes through LambdaFunction._invoke_lambda (adapted locally).
        default_user_config.setdefault("lambda", {})["use_docker"] = True
        default_user_config.setdefault("iam", {})["load_aws_managed_policies"] = False

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per AWS call otherwise
        self._server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        self._server.start()
        self.port = int(self._server.get_host_and_port()[1])
        self._export(self.environment)
        log.info("moto %s listening on %s", _moto_version(), self.endpoint_url)

    def _export(self, values: Mapping[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def stop(self) -> None:
        from moto.core.config import default_user_config

        if self._server is not None:
            try:
                self._server.stop()
            finally:
                inner = getattr(self._server, "_server", None)
                if inner is not None:
                    inner.server_close()
                self._server = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = False
        reset_moto()


_SHARED_DATA = ("/endpoints", "/partitions", "/ec2/2016-11-15/service-2")


def share_endpoint_data() -> None:
    """Parse botocore's endpoint data (and EC2's model, which region lookups read) once per process.

    Importing moto creates a boto3 session per region lookup (9 parses of EC2's 8 MB model, 5 of the
    1.2 MB endpoints.json: seconds on a slow machine); the data is only ever read.
    """
    import botocore.loaders

    loader_cls: Any = botocore.loaders.JSONFileLoader
    if getattr(loader_cls.load_file, "_shared", False):
        return
    original = loader_cls.load_file
    cache: dict[str, Any] = {}

    def load_file(self: Any, file_path: str) -> Any:
        if not file_path.endswith(_SHARED_DATA):
            return original(self, file_path)
        if file_path not in cache:
            cache[file_path] = original(self, file_path)
        return cache[file_path]

    load_file._shared = True  # type: ignore[attr-defined]
    loader_cls.load_file = load_file


def reset_moto() -> None:
    """Forget every resource of every backend (what POST /moto-api/reset does)."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def _moto_version() -> str:
    import moto

    return str(getattr(moto, "__version__", "?"))
