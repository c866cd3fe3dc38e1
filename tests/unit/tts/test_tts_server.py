"""The tts container over HTTP (the serving contract), against S3 on the shared local moto server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from storyflow_serving.http import ServingHTTPServer, make_server
from storyflow_serving.service import Host
from storyflow_tts.engines.base import Speech
from storyflow_tts.engines.espeak import EspeakEngine
from storyflow_tts.errors import EngineFailed
from storyflow_tts.params import TtsParams
from storyflow_tts.service import FAULT_ENV, TtsService

pytestmark = pytest.mark.enable_socket  # everything stays on 127.0.0.1

BUCKET = "tts-test-bucket"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
OUTPUTS = ("narration.wav", "narration.m4a", "narration.srt", "narration.vtt", "words.json")


def _point_at(mp: pytest.MonkeyPatch, endpoint: str) -> None:
    mp.setenv("AWS_ENDPOINT_URL", endpoint)
    for name, value in FAKE_AWS.items():
        mp.setenv(name, value)
    mp.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="module")
def s3_endpoint(moto_endpoint: str) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        _point_at(mp, moto_endpoint)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield moto_endpoint


@pytest.fixture(autouse=True)
def _moto_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _point_at(monkeypatch, s3_endpoint)


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint)


class GatedEspeak(EspeakEngine):
    """espeak whose ``load()`` waits for the test (to see /ping and /healthz turn from 503 to 200)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def load(self) -> None:
        if not self.gate.wait(timeout=30):
            raise TimeoutError("test never opened the gate")
        super().load()


class BrokenEngine(EspeakEngine):
    """An engine bug: synthesising raises a plain exception."""

    def synthesize(self, text: str, params: TtsParams) -> Speech:
        raise RuntimeError("CUDA error: device-side assert triggered")


def start(service: TtsService) -> tuple[ServingHTTPServer, str]:
    host = Host(service)
    server = make_server("127.0.0.1", 0, host, routes={"/healthz": lambda: service.health(host)})
    server.start_loading()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    address, port = server.server_address[:2]
    return server, f"http://{address}:{port}"


def wait_for(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture(scope="module")
def api(s3_endpoint: str) -> Iterator[str]:
    service = TtsService(EspeakEngine())
    server, url = start(service)
    assert wait_for(lambda: service.ready)
    yield url
    server.shutdown()
    server.server_close()


def put_text(s3: Any, job: str, text: str) -> str:
    key = f"tts/{job}/request.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"text": text, "voice": "ignored-here"}).encode())
    return f"s3://{BUCKET}/{key}"


def invoke(url: str, body: Any) -> requests.Response:
    return requests.post(f"{url}/invocations", data=json.dumps(body).encode(), timeout=60)


def test_ping_and_healthz_are_503_until_the_engine_is_loaded() -> None:
    engine = GatedEspeak()
    server, url = start(TtsService(engine))
    try:
        assert requests.get(f"{url}/ping", timeout=5).status_code == 503
        health = requests.get(f"{url}/healthz", timeout=5)
        assert (health.status_code, health.json()["status"]) == (503, "loading")
        engine.gate.set()
        assert wait_for(lambda: requests.get(f"{url}/ping", timeout=5).status_code == 200)
        assert requests.get(f"{url}/ping", timeout=5).json() == {"status": "ok", "engine": "espeak"}
        health = requests.get(f"{url}/healthz", timeout=5)
        assert health.status_code == 200
        assert health.json()["status"] == "ok" and health.json()["engine"] == "espeak"
    finally:
        server.shutdown()
        server.server_close()


def test_invocation_writes_the_five_outputs_beside_output_uri(api: str, s3: Any) -> None:
    # Given the text in S3, When /invocations is posted
    job = "tts-test-0001"
    body = {
        "input_uri": put_text(s3, job, "Hello there. This is a test of the narration."),
        "output_uri": f"s3://{BUCKET}/tts/{job}/narration.wav",
        "params": {"voice": "bm_george", "speed": 1.2, "lang": None, "format": "m4a"},
    }
    r = invoke(api, body)
    # Then 200 with a manifest naming every output
    assert r.status_code == 200, r.text
    manifest = r.json()
    prefix = f"s3://{BUCKET}/tts/{job}/"
    assert manifest["outputs"] == {name: prefix + name for name in OUTPUTS}
    assert manifest["audio"] == prefix + "narration.m4a"
    assert (manifest["engine"], manifest["voice"], manifest["lang"]) == ("espeak", "bm_george", "en-gb")
    assert manifest["words"] == 9 and manifest["cues"] == 2 and manifest["seconds"] > 1
    # ... and each object is in S3 with its media type
    types = {name: s3.head_object(Bucket=BUCKET, Key=f"tts/{job}/{name}")["ContentType"] for name in OUTPUTS}
    assert types == {
        "narration.wav": "audio/wav",
        "narration.m4a": "audio/mp4",
        "narration.srt": "application/x-subrip",
        "narration.vtt": "text/vtt",
        "words.json": "application/json",
    }
    assert requests.get(f"{api}/healthz", timeout=5).json()["invocations"] >= 1


@pytest.mark.parametrize(
    ("params", "output", "status", "error", "cause"),
    [
        ({"voice": "xx_nobody"}, "narration.wav", 400, "InvalidParams", "voice"),
        ({"lang": "de"}, "narration.wav", 400, "InvalidParams", "lang"),
        ({"speed": 3}, "narration.wav", 400, "InvalidParams", "speed"),
        ({}, "audio.wav", 400, "InvalidRequest", "narration.wav"),
    ],
)
def test_bad_requests_are_400_with_a_typed_error(
    api: str, s3: Any, params: dict[str, Any], output: str, status: int, error: str, cause: str
) -> None:
    body = {"input_uri": put_text(s3, "tts-bad-0001", "Hi."), "output_uri": f"s3://{BUCKET}/o/{output}"}
    r = invoke(api, {**body, "params": params})
    assert r.status_code == status and r.json()["error"] == error, r.text
    assert cause in r.json()["cause"]


def test_missing_text_object_is_404_and_blank_text_is_422(api: str, s3: Any) -> None:
    output = f"s3://{BUCKET}/tts/tts-x-00000001/narration.wav"
    r = invoke(api, {"input_uri": f"s3://{BUCKET}/tts/nope/request.json", "output_uri": output})
    assert (r.status_code, r.json()["error"]) == (404, "InputNotFound")
    r = invoke(api, {"input_uri": put_text(s3, "tts-blank-01", "   "), "output_uri": output})
    assert (r.status_code, r.json()["error"]) == (422, "NothingToSay")


def test_engine_failures_are_typed(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an engine with a bug, When it is invoked, Then 500 EngineFailed naming the original exception
    server, url = start(TtsService(BrokenEngine()))
    try:
        assert wait_for(lambda: requests.get(f"{url}/ping", timeout=5).status_code == 200)
        output = f"s3://{BUCKET}/tts/tts-broken-01/narration.wav"
        r = invoke(url, {"input_uri": put_text(s3, "tts-broken-01", "Hello."), "output_uri": output})
        assert (r.status_code, r.json()["error"]) == (500, EngineFailed.__name__)
        assert "RuntimeError: CUDA error" in r.json()["cause"]
    finally:
        server.shutdown()
        server.server_close()


def test_the_injected_fault_fails_only_its_text(api: str, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_ENV, "boom-here")
    output = f"s3://{BUCKET}/tts/tts-fault-01/narration.wav"
    r = invoke(api, {"input_uri": put_text(s3, "tts-fault-01", "Say boom-here."), "output_uri": output})
    assert (r.status_code, r.json()["error"]) == (500, "InjectedFault")
    r = invoke(api, {"input_uri": put_text(s3, "tts-fault-02", "Say nothing."), "output_uri": output})
    assert r.status_code == 200, r.text


def test_a_kokoro_engine_without_weights_fails_its_load_not_the_server(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storyflow_tts.engines.kokoro import KokoroEngine

    # Given MODEL_DIR without Kokoro files, When the server loads, Then /ping is 503 ModelNotAvailable
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    server, url = start(TtsService(KokoroEngine()))
    try:
        assert wait_for(lambda: requests.get(f"{url}/ping", timeout=5).json().get("status") == "failed")
        ping = requests.get(f"{url}/ping", timeout=5)
        assert (ping.status_code, ping.json()["error"]) == (503, "ModelNotAvailable")
        assert "never downloaded" in ping.json()["cause"]
        assert requests.get(f"{url}/healthz", timeout=5).json()["error"] == "ModelNotAvailable"
    finally:
        server.shutdown()
        server.server_close()
