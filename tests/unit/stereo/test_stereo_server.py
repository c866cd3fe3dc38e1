"""The SageMaker HTTP API of the stereo container against S3 on a local moto server (Given/When/Then)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from storyflow_serving.http import ServingHTTPServer, make_server
from storyflow_stereo.cli import build_parser
from storyflow_stereo.engines.depthwarp import DepthWarpEngine
from storyflow_stereo.service import StereoService
from storyflow_stereo.video import probe

# Everything stays on 127.0.0.1 (moto and the server under test).
pytestmark = pytest.mark.enable_socket

BUCKET = "stereo-test-bucket"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class GatedDepthWarpEngine(DepthWarpEngine):
    """depthwarp whose ``load()`` blocks until the test opens the gate (to observe /ping 503 -> 200)."""

    def __init__(self) -> None:
        super().__init__(preset="ultrafast")
        self.gate = threading.Event()

    def load(self) -> None:
        if not self.gate.wait(timeout=30):
            raise TimeoutError("test never opened the gate")
        super().load()


@pytest.fixture(scope="module")
def s3_endpoint(moto_endpoint: str) -> Iterator[str]:
    """The shared moto server, with fake credentials in the environment (boto3 reads them) and a bucket."""
    with pytest.MonkeyPatch.context() as mp:
        _point_at(mp, moto_endpoint)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield moto_endpoint


def _point_at(mp: pytest.MonkeyPatch, endpoint: str) -> None:
    mp.setenv("AWS_ENDPOINT_URL", endpoint)
    for name, value in FAKE_AWS.items():
        mp.setenv(name, value)
    mp.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(autouse=True)
def _moto_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per test (after the unit-wide env reset): the container reaches S3 only through AWS_ENDPOINT_URL."""
    _point_at(monkeypatch, s3_endpoint)


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint)


@pytest.fixture(scope="module")
def uploaded_clip(s3: Any, small_clip: Path) -> str:
    key = "segments/st-test-0001/00000.mp4"
    s3.upload_file(str(small_clip), BUCKET, key)
    return f"s3://{BUCKET}/{key}"


def start(service: StereoService) -> tuple[ServingHTTPServer, str]:
    """The serving library's server hosting ``service``, loading it in the background."""
    server = make_server("127.0.0.1", 0, service)
    server.start_loading()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}"


def wait_for(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture(scope="module")
def api(s3_endpoint: str) -> Iterator[str]:
    """A loaded depthwarp server for the invocation tests."""
    service = StereoService(DepthWarpEngine(preset="ultrafast"))
    server, url = start(service)
    assert wait_for(lambda: service.ready)
    yield url
    server.shutdown()
    server.server_close()


def invoke(url: str, body: Any) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{url}/invocations", data=data, timeout=60)


def test_ping_is_503_until_the_engine_is_loaded() -> None:
    # Given a server whose engine is still loading
    engine = GatedDepthWarpEngine()
    service = StereoService(engine)
    server, url = start(service)
    try:
        # When pinged, Then 503 "loading"
        r = requests.get(f"{url}/ping", timeout=5)
        assert r.status_code == 503
        assert r.json()["status"] == "loading"
        # When the engine finishes loading, Then /ping answers 200
        engine.gate.set()
        assert wait_for(lambda: requests.get(f"{url}/ping", timeout=5).status_code == 200)
        assert requests.get(f"{url}/ping", timeout=5).json() == {"status": "ok", "engine": "depthwarp"}
    finally:
        server.shutdown()
        server.server_close()


def test_invocation_renders_and_writes_the_output(
    api: str, s3: Any, uploaded_clip: str, tmp_path: Path
) -> None:
    # Given a segment in S3, When /invocations is posted
    out_key = "jobs/st-test-0001/segments/00000.mp4"
    body = {
        "input_uri": uploaded_clip,
        "output_uri": f"s3://{BUCKET}/{out_key}",
        "params": {"layout": "half", "baseline": 0.04, "convergence": 0.4},
    }
    r = invoke(api, body)
    # Then 200 with the manifest of the rendered video
    assert r.status_code == 200, r.text
    assert r.json() == {
        "output_uri": f"s3://{BUCKET}/{out_key}",
        "frames": 12,
        "width": 160,
        "height": 90,
        "seconds": 0.5,
    }
    # And the object in S3 is that video
    local = tmp_path / "out.mp4"
    s3.download_file(BUCKET, out_key, str(local))
    info, frames = probe(local)
    assert (frames, info.width, info.height) == (12, 160, 90)
    assert s3.head_object(Bucket=BUCKET, Key=out_key)["ContentType"] == "video/mp4"
    # ... tagged intermediate as it is written: it expires even if its job never reassembles
    assert s3.get_object_tagging(Bucket=BUCKET, Key=out_key)["TagSet"] == [
        {"Key": "storyflow-lifecycle", "Value": "expire-intermediate"}
    ]


@pytest.mark.parametrize(
    ("body", "error", "cause"),
    [
        (b"{not json", "InvalidRequest", "not valid JSON"),
        ([1, 2], "InvalidRequest", "must be a JSON object"),
        ({"output_uri": "s3://b/k.mp4"}, "InvalidRequest", "missing field(s) ['input_uri']"),
        (
            {"input_uri": "https://x/y.mp4", "output_uri": "s3://b/k.mp4"},
            "InvalidRequest",
            "input_uri must be",
        ),
        ({"input_uri": "s3://b/k.mp4", "output_uri": "s3://b/"}, "InvalidRequest", "output_uri must name"),
        (
            {"input_uri": "s3://b/k.mp4", "output_uri": "s3://b/o.mp4", "params": {"layout": "anaglyph"}},
            "InvalidParams",
            "layout must be one of",
        ),
    ],
)
def test_bad_requests_are_400_with_a_json_error(api: str, body: Any, error: str, cause: str) -> None:
    # Given a malformed request, When posted, Then 400 {"error", "cause"}
    r = invoke(api, body)
    assert r.status_code == 400
    assert r.headers["Content-Type"] == "application/json"
    assert r.json()["error"] == error
    assert cause in r.json()["cause"]


def test_missing_input_is_404(api: str) -> None:
    r = invoke(api, {"input_uri": f"s3://{BUCKET}/nope/missing.mp4", "output_uri": f"s3://{BUCKET}/o.mp4"})
    assert r.status_code == 404
    assert r.json()["error"] == "InputNotFound"


def test_not_a_video_is_422(api: str, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="segments/bad/00000.mp4", Body=b"")
    r = invoke(
        api, {"input_uri": f"s3://{BUCKET}/segments/bad/00000.mp4", "output_uri": f"s3://{BUCKET}/o.mp4"}
    )
    assert r.status_code == 422
    assert r.json()["error"] == "NotAVideo"


def test_injected_fault_is_a_500_json_error(
    api: str, s3: Any, uploaded_clip: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given STEREO_FAIL_INPUT_SUBSTRING matching the input URI
    monkeypatch.setenv("STEREO_FAIL_INPUT_SUBSTRING", "st-test-0001")
    out_key = "jobs/st-test-0001/segments/fault.mp4"
    # When invoked, Then 500 {"error": "InjectedFault"} and nothing is written
    r = invoke(api, {"input_uri": uploaded_clip, "output_uri": f"s3://{BUCKET}/{out_key}"})
    assert r.status_code == 500
    assert r.json()["error"] == "InjectedFault"
    assert "st-test-0001" in r.json()["cause"]
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=out_key).get("KeyCount", 0) == 0
    # And a non-matching input still works
    monkeypatch.setenv("STEREO_FAIL_INPUT_SUBSTRING", "some-other-job")
    assert (
        invoke(api, {"input_uri": uploaded_clip, "output_uri": f"s3://{BUCKET}/{out_key}"}).status_code == 200
    )


def test_engine_failure_is_a_500_with_its_class_name(s3_endpoint: str, uploaded_clip: str) -> None:
    # Given an engine that fails while rendering
    class Broken(DepthWarpEngine):
        def render_file(self, src: Path, dst: Path, params: Any) -> Any:
            raise RuntimeError("CUDA out of memory (simulated)")

    service = StereoService(Broken())
    server, url = start(service)
    try:
        r = invoke(url, {"input_uri": uploaded_clip, "output_uri": f"s3://{BUCKET}/x.mp4"})
        # Then 500 {"error": "RuntimeError", "cause": <message>}
        assert r.status_code == 500
        assert r.json() == {"error": "RuntimeError", "cause": "CUDA out of memory (simulated)"}
    finally:
        server.shutdown()
        server.server_close()


def test_failed_load_keeps_ping_503_and_explains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the GPU engine without weights, When the server starts, Then /ping stays 503 with the reason
    from storyflow_stereo.engines.stereocrafter import StereoCrafterEngine

    service = StereoService(StereoCrafterEngine(model_dir=tmp_path, code_dir=str(tmp_path)))
    server, url = start(service)
    server.start_loading().join(timeout=30)
    try:
        r = requests.get(f"{url}/ping", timeout=5)
        assert r.status_code == 503
        assert r.json()["status"] == "failed" and r.json()["error"] == "ModelNotAvailable"
        # And invocations are refused with the same typed error
        monkeypatch.setenv("STEREO_READY_WAIT_SECONDS", "0")
        r = invoke(url, {"input_uri": "s3://b/in.mp4", "output_uri": "s3://b/out.mp4"})
        assert r.status_code == 503 and r.json()["error"] == "ModelNotAvailable"
    finally:
        server.shutdown()
        server.server_close()


def test_unknown_route_is_404(api: str) -> None:
    assert requests.get(f"{api}/nope", timeout=5).status_code == 404
    assert requests.post(f"{api}/nope", data=b"{}", timeout=5).json()["error"] == "NotFound"


def test_cli_help_documents_serve() -> None:
    parser = build_parser()
    assert "serve" in parser.format_help()
    serve_help = parser._subparsers._group_actions[0].choices["serve"].format_help()  # type: ignore[union-attr]
    assert "--port" in serve_help and "--host" in serve_help and "/invocations" in serve_help
    args = parser.parse_args(["serve"])
    assert (args.host, args.port) == ("0.0.0.0", 8080)


def test_cli_serve_runs_and_stops_on_sigterm(tmp_path: Path) -> None:
    # Given `storyflow-stereo serve --port 0` started as SageMaker would (a separate process)
    env = {
        **os.environ,
        "ENGINE": "depthwarp",
        "PYTHONPATH": os.pathsep.join(
            str(Path(__file__).resolve().parents[3] / "containers" / name) for name in ("stereo", "serving")
        ),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "storyflow_stereo", "serve", "--host", "127.0.0.1", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        port = None
        for line in proc.stderr:
            match = re.search(r"serving engine depthwarp on 127\.0\.0\.1:(\d+)", line)
            if match:
                port = int(match.group(1))
                break
        assert port is not None
        # When pinged, Then it becomes healthy
        assert wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/ping", timeout=5).status_code == 200)
        # When SIGTERM arrives (SageMaker stopping the container), Then it exits 0
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
