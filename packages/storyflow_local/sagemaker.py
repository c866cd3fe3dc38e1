"""SageMaker asynchronous inference, served by the model's own container command run locally.

`InvokeEndpointAsync` (SDK, or the `aws-sdk:sagemakerruntime:invokeEndpointAsync` task) answers at
once with the AWS response (InferenceId, OutputLocation, FailureLocation); a worker then

1. starts the model's serve command once per endpoint: the program of the model's PrimaryContainer
   `Image` (see `programs`) + `serve --port <free port>`, with the container's `Environment` and
   `SAGEMAKER_BIND_TO_PORT`, and waits for `GET /ping` → 200;
2. reads the request body from `InputLocation` (S3) and POSTs it to `/invocations`;
3. writes a 2xx answer to `S3OutputPath/{InferenceId}.out` (or the request's Filename) and publishes
   the success notification to the endpoint config's `SuccessTopic`; otherwise writes the error to
   `S3FailurePath/{InferenceId}-error.out` (when configured) and publishes the error notification
   (`invocationStatus: Failed`, `failureReason`) to `ErrorTopic`.

At most instances * `MaxConcurrentInvocationsPerInstance` (default 4) inferences are inside the model
container at a time per endpoint; reading inputs and writing answers happen outside (`sagemaker_queue`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import IO, Any

from storyflow_local.context import LocalContext
from storyflow_local.programs import child_path, image_entrypoint, resolve_argv
from storyflow_local.sagemaker_queue import EndpointQueue, endpoint_slots
from storyflow_local.server import HOST, free_port

log = logging.getLogger("storyflow_local.sagemaker")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def join_s3(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts if p]])


@dataclass
class AsyncRequest:
    endpoint_name: str
    inference_id: str
    input_location: str
    output_location: str
    failure_location: str | None
    content_type: str
    accept: str | None
    custom_attributes: str | None
    timeout: float
    received: str = field(default_factory=_now)


def notification(
    request: AsyncRequest,
    region: str,
    ok: bool,
    response_content_type: str | None = None,
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """The message SageMaker publishes to the success or error topic of an async endpoint."""
    message: dict[str, Any] = {
        "awsRegion": region,
        "eventTime": _now(),
        "receivedTime": request.received,
        "invocationStatus": "Completed" if ok else "Failed",
        "requestParameters": {
            "contentType": request.content_type,
            "endpointName": request.endpoint_name,
            "inputLocation": request.input_location,
        },
        "inferenceId": request.inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    if ok:
        message["responseParameters"] = {
            "contentType": response_content_type or "application/json",
            "outputLocation": request.output_location,
        }
    else:
        message["failureReason"] = failure_reason or "ModelError"
        if request.failure_location:
            message["responseParameters"] = {
                "contentType": "text/plain; charset=utf-8",
                "failureLocation": request.failure_location,
            }
    return message


class ModelServer:
    """The serve command of one endpoint's model container, on a free port."""

    def __init__(self, endpoint_name: str, argv: list[str], env: dict[str, str], ping_timeout: float) -> None:
        self.endpoint_name = endpoint_name
        self.port = free_port()
        self.argv = [*argv, "serve", "--port", str(self.port)]
        self.env = {**env, "SAGEMAKER_BIND_TO_PORT": str(self.port)}
        self.ping_timeout = ping_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.tail: list[str] = []
        self.closed = False  # stopped with the local cloud: never starts (again)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def ensure_ready(self) -> None:
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                return
            if self.process is not None:
                log.warning(
                    "[sagemaker %s] model server exited (%s); restarting",
                    self.endpoint_name,
                    self.process.returncode,
                )
                self.port = free_port()
                self.argv[-1] = str(self.port)
                self.env["SAGEMAKER_BIND_TO_PORT"] = str(self.port)
            if self.closed:
                raise RuntimeError(f"the local cloud stopped endpoint {self.endpoint_name}")
            log.info("[sagemaker %s] $ %s", self.endpoint_name, " ".join(self.argv))
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True).start()
            if self.closed:  # stopped while it was starting
                self.stop()
            self._wait_for_ping()

    def _pump(self, stream: IO[bytes] | None) -> None:
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            self.tail = [*self.tail[-19:], line]
            log.info("[sagemaker %s] %s", self.endpoint_name, line)
        stream.close()

    def _wait_for_ping(self) -> None:
        deadline = time.monotonic() + self.ping_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                last = self.tail[-1] if self.tail else ""
                raise RuntimeError(
                    f"model server exited with {self.process.returncode if self.process else '?'}"
                    f" before answering /ping: {last}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as response:
                    if response.status == 200:
                        log.info("[sagemaker %s] ready on %s", self.endpoint_name, self.url)
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"model server did not answer /ping with 200 within {self.ping_timeout:.0f}s")

    def invoke(
        self,
        body: bytes,
        content_type: str,
        accept: str | None,
        custom_attributes: str | None,
        timeout: float,
    ) -> tuple[int, bytes, str]:
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        if custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
        request = urllib.request.Request(f"{self.url}/invocations", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers.get("Content-Type", "")

    def stop(self, timeout: float = 5.0) -> None:
        self.closed = True
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, 15)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
        except ProcessLookupError:
            pass


class SageMakerAdapter:
    def __init__(self, ctx: LocalContext) -> None:
        self.ctx = ctx
        self.servers: dict[str, ModelServer] = {}
        self.pools: dict[str, EndpointQueue] = {}
        self._lock = threading.Lock()
        self._stopped = False  # no model server starts once the local cloud stops

    def install(self) -> None:
        from moto.sagemaker.models import FakeEndpointConfig
        from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

        adapter = self

        def invoke_endpoint_async(response: Any) -> Any:
            return adapter.accept(response.path.split("/")[2], response.headers)

        def validate_instance_type(config: Any, instance_type: str) -> None:
            # moto's list of instance types is dated (no ml.g5/g6): accept any ml.* type.
            if not str(instance_type).startswith("ml."):
                raise ValueError(f"invalid instance type {instance_type}")

        self.ctx.patches.set(SageMakerRuntimeResponse, "invoke_endpoint_async", invoke_endpoint_async)
        self.ctx.patches.set(FakeEndpointConfig, "validate_instance_type", validate_instance_type)

    def start_endpoints(self) -> threading.Thread | None:
        """Start every endpoint's model server now, in the background (on AWS an endpoint is InService
        once its container answers /ping, before any invocation); a failure is logged, and the first
        invocation tries again (and fails the inference the AWS way if it still cannot start)."""
        from moto.sagemaker.models import sagemaker_backends

        names = list(sagemaker_backends[self.ctx.account_id][self.ctx.region].endpoints)

        def start() -> None:
            for name in names:
                try:
                    self._server(name)
                except Exception as error:
                    log.info(
                        "[sagemaker %s] model server not started at deploy (first invocation tries): %s",
                        name,
                        error,
                    )

        if not names:
            return None
        thread = threading.Thread(target=start, name="sagemaker-endpoints", daemon=True)
        thread.start()
        return thread

    def _describe(self, endpoint_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[self.ctx.account_id][self.ctx.region]
        endpoint = backend.endpoints[endpoint_name]
        config = backend.endpoint_configs[endpoint.endpoint_config_name]
        model = backend.describe_model(config.production_variants[0]["ModelName"])
        return config.async_inference_config or {}, model.primary_container or {}

    def accept(self, endpoint_name: str, headers: Any) -> tuple[int, dict[str, str], str]:
        try:
            async_config, _ = self._describe(endpoint_name)
        except KeyError:
            arn = (
                f"arn:aws:sagemaker:{self.ctx.region}:{self.ctx.account_id}:endpoint/{endpoint_name.lower()}"
            )
            body = json.dumps(
                {
                    "__type": "ValidationError",
                    "message": f"Endpoint {endpoint_name} of account {self.ctx.account_id} not found.",
                    "arn": arn,
                }
            )
            return (
                400,
                {"status": "400", "x-amzn-ErrorType": "ValidationError", "Content-Type": "application/json"},
                body,
            )
        output_config = async_config.get("OutputConfig", {})
        inference_id = headers.get("X-Amzn-SageMaker-Inference-Id") or str(uuid.uuid4())
        filename = headers.get("X-Amzn-SageMaker-Filename") or f"{inference_id}.out"
        output = join_s3(
            output_config.get("S3OutputPath", "s3://sagemaker-local-output"),
            headers.get("X-Amzn-SageMaker-S3OutputPathExtension") or "",
            filename,
        )
        failure_path = output_config.get("S3FailurePath")
        request = AsyncRequest(
            endpoint_name=endpoint_name,
            inference_id=inference_id,
            input_location=headers.get("X-Amzn-SageMaker-InputLocation", ""),
            output_location=output,
            failure_location=join_s3(failure_path, f"{inference_id}-error.out") if failure_path else None,
            content_type=headers.get("X-Amzn-SageMaker-Content-Type") or "application/octet-stream",
            accept=headers.get("X-Amzn-SageMaker-Accept"),
            custom_attributes=headers.get("X-Amzn-SageMaker-Custom-Attributes"),
            timeout=float(headers.get("X-Amzn-SageMaker-InvocationTimeoutSeconds") or 900),
        )
        self._pool(endpoint_name, async_config).submit(self._run, request)
        response_headers = {
            "status": "202",
            "X-Amzn-SageMaker-OutputLocation": output,
            "Content-Type": "application/json",
        }
        if request.failure_location:
            response_headers["X-Amzn-SageMaker-FailureLocation"] = request.failure_location
        return 202, response_headers, json.dumps({"InferenceId": inference_id})

    def _pool(self, endpoint_name: str, async_config: dict[str, Any]) -> EndpointQueue:
        from moto.sagemaker.models import sagemaker_backends

        with self._lock:
            pool = self.pools.get(endpoint_name)
            if pool is None:
                backend = sagemaker_backends[self.ctx.account_id][self.ctx.region]
                config = backend.endpoint_configs[backend.endpoints[endpoint_name].endpoint_config_name]
                slots = endpoint_slots(async_config, list(config.production_variants))
                pool = self.pools[endpoint_name] = EndpointQueue(endpoint_name, slots)
            return pool

    def _server(self, endpoint_name: str) -> ModelServer:
        with self._lock:
            if self._stopped:
                raise RuntimeError(f"the local cloud stopped; endpoint {endpoint_name} is gone")
            server = self.servers.get(endpoint_name)
            if server is None:
                _, container = self._describe(endpoint_name)
                image = str(container.get("Image", ""))
                program = image_entrypoint(image, self.ctx.bin_dir, self.ctx.image_commands())
                if program is None:
                    raise RuntimeError(f"no local program for image {image!r} (see storyflow_local.programs)")
                env = {
                    **os.environ.copy(),
                    **self.ctx.environment,
                    "PYTHONUNBUFFERED": "1",
                    "PATH": child_path(self.ctx.bin_dir),
                    **{k: str(v) for k, v in (container.get("Environment") or {}).items()},
                    **self.ctx.config.container_environment,
                }
                server = ModelServer(
                    endpoint_name,
                    resolve_argv(program, self.ctx.bin_dir),
                    env,
                    self.ctx.config.sagemaker_ping_timeout_seconds,
                )
                self.servers[endpoint_name] = server
        server.ensure_ready()
        return server

    def _run(self, request: AsyncRequest) -> None:
        s3 = self.ctx.clients.get("s3")
        try:
            bucket, key = split_s3(request.input_location)
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            with self.pools[request.endpoint_name].slot():  # inside the model container
                server = self._server(request.endpoint_name)
                status, answer, content_type = server.invoke(
                    body, request.content_type, request.accept, request.custom_attributes, request.timeout
                )
        except Exception as error:
            log.warning(
                "[sagemaker %s] inference %s failed: %s", request.endpoint_name, request.inference_id, error
            )
            self._fail(request, f"ModelError: {error}", str(error).encode())
            return
        if 200 <= status < 300:
            bucket, key = split_s3(request.output_location)
            s3.put_object(Bucket=bucket, Key=key, Body=answer, ContentType=content_type or "application/json")
            log.info(
                "[sagemaker %s] inference %s completed → %s",
                request.endpoint_name,
                request.inference_id,
                request.output_location,
            )
            self._publish(request, "SuccessTopic", notification(request, self.ctx.region, True, content_type))
            return
        kind = "client" if 400 <= status < 500 else "server"
        text = answer.decode(errors="replace")
        reason = (
            f'ClientError: Received {kind} error ({status}) from model with message "{text}". '
            "See the SageMaker Endpoint logs in your account for more information."
        )
        log.info(
            "[sagemaker %s] inference %s failed (%d): %s",
            request.endpoint_name,
            request.inference_id,
            status,
            text,
        )
        self._fail(request, reason, answer)

    def _fail(self, request: AsyncRequest, reason: str, body: bytes) -> None:
        if request.failure_location:
            try:
                bucket, key = split_s3(request.failure_location)
                self.ctx.clients.get("s3").put_object(Bucket=bucket, Key=key, Body=body)
            except Exception:
                log.exception("could not write the failure of inference %s", request.inference_id)
        self._publish(
            request, "ErrorTopic", notification(request, self.ctx.region, False, failure_reason=reason)
        )

    def _publish(self, request: AsyncRequest, topic_key: str, message: dict[str, Any]) -> None:
        try:
            async_config, _ = self._describe(request.endpoint_name)
        except KeyError:
            return
        topic = (async_config.get("OutputConfig", {}).get("NotificationConfig") or {}).get(topic_key)
        if topic:
            self.ctx.clients.get("sns").publish(TopicArn=topic, Message=json.dumps(message))

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            pools, servers = list(self.pools.values()), list(self.servers.values())
            self.pools.clear()
            self.servers.clear()
        for pool in pools:
            pool.shutdown()
        for server in servers:
            server.stop()
