"""The story workflow on the local cloud (or the stack STORYFLOW_STACK names): the real API, the real story
state machine with its Distributed Map of nested tts and video executions (`startExecution.sync:2`), the
plan Lambda, the real child workflows and containers, and `storyflow-media compose`.

The local stack runs stories at 240p with 1 s clips (tests/integration/conftest.py STACK_PARAMETERS).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import av
import pytest
import requests
from storyflow_media.synth import make_tone

from storyflow_local.sagemaker import ModelServer
from tests.integration.conftest import FAULTY_TTS_TEXT
from tests.support import jobs_api
from tests.support.jobs_api import api
from tests.support.poll import wait_until
from tests.support.target import IntegrationTarget

TIMEOUT = 300
EVENTS = Path(__file__).resolve().parents[1] / "events"
SCENES = [
    {"text": "A fox dreams of the sky.", "visual_prompt": "a red fox looking up at clouds, golden hour"},
    {"text": "One morning, it leaps into the clouds and does not come down."},
]


def submit(target: IntegrationTarget, body: dict[str, Any]) -> str:
    accepted = api(target, "POST", "/jobs", json={"kind": "story", **body})
    assert accepted["status"] == "queued"
    job_id: str = accepted["job_id"]
    return job_id


def job(target: IntegrationTarget, job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = api(target, "GET", f"/jobs/{job_id}")
    return found


def final_video(target: IntegrationTarget, job_id: str, name: str = "final.mp4") -> bytes:
    urls = api(target, "GET", f"/jobs/{job_id}/outputs")["outputs"]
    response = requests.get(urls[name], timeout=60)
    assert response.status_code == 200
    return response.content


def narration_seconds(target: IntegrationTarget, tts_job: str) -> float:
    urls = api(target, "GET", f"/jobs/{tts_job}/outputs")["outputs"]
    words = requests.get(urls["words.json"], timeout=60).json()
    return float(words["duration_ms"]) / 1000


def execution_status(target: IntegrationTarget, arn: str) -> str:
    status: str = target.client("stepfunctions").describe_execution(executionArn=arn)["status"]
    return status


@pytest.fixture(scope="module")
def music(target: IntegrationTarget, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Background music (a 2 s tone) in the stack's input bucket, outside any job's keys."""
    bucket = target.outputs["InputBucketName"]
    path = make_tone(tmp_path_factory.mktemp("music") / "theme.wav", 2.0, hz=196.0)
    target.client("s3").upload_file(str(path), bucket, "music/story-theme.wav")
    return f"s3://{bucket}/music/story-theme.wav"


@pytest.fixture(scope="module")
def story(target: IntegrationTarget, music: str) -> dict[str, Any]:
    """Given a completed two-scene story with burned and soft subtitles and ducked music (shared by the tests
    below)."""
    body = {"scenes": SCENES, "voice": "bf_emma", "aspect": "9:16", "subtitles": "both", "music_uri": music}
    job_id = submit(target, body)
    done = jobs_api.wait_finished(target, job_id, TIMEOUT, missing_ok=False)
    assert done["status"] == "completed", done.get("error")
    return done


def test_a_story_of_given_scenes_is_narrated_filmed_and_composed(
    target: IntegrationTarget, story: dict[str, Any]
) -> None:
    # Then every scene's narration and clip were jobs of their own, recorded with their parent
    children = story["children"]
    assert [(c["scene"], c["kind"]) for c in children] == [(0, "tts"), (0, "video"), (1, "tts"), (1, "video")]
    for child in children:
        record = job(target, child["job_id"])
        assert record["parent_id"] == story["job_id"] and record["status"] == "completed"
    tts = [job(target, c["job_id"]) for c in children if c["kind"] == "tts"]
    assert [t["request"]["text"] for t in tts] == [s["text"] for s in SCENES]
    assert all(t["request"]["voice"] == "bf_emma" for t in tts)
    video = [job(target, c["job_id"]) for c in children if c["kind"] == "video"]
    assert video[0]["request"]["prompt"] == SCENES[0]["visual_prompt"]
    assert video[1]["request"]["prompt"] == SCENES[1]["text"]  # no visual prompt: the clip shows the text
    # ... compose fitted both scenes and mixed the music under the narration
    assert story["result"]["scenes"] == 2 and story["result"]["music"] is True
    assert story["result"]["subtitles"] == "both" and story["result"]["cues"] >= 2
    # ... progress counted the scenes
    assert story["progress"] == {"done": 2, "total": 2}
    assert story["stage"] == "done"
    # ... and the composed video is 9:16 at the stack's short side, with a soft subtitle track, and at least
    # as long as the narrations (a clip is never cut short of its narration)
    data = final_video(target, story["job_id"])
    with av.open(BytesIO(data)) as container:
        video_stream = container.streams.video[0]
        width, height = video_stream.codec_context.width, video_stream.codec_context.height
        assert width == 240 and 1.7 < height / width < 1.8, (width, height)
        assert [s.codec_context.name for s in container.streams.subtitles] == ["mov_text"]
        assert container.streams.audio, "the narration is the story's audio"
        seconds = float(container.duration or 0) / av.time_base
    spoken = sum(narration_seconds(target, t["job_id"]) for t in tts)
    assert seconds >= spoken - 0.5 * (len(SCENES) - 1) - 0.1  # crossfades overlap the scenes by 0.5 s


def test_regenerating_a_scene_remakes_only_that_scene_and_composes_again(
    target: IntegrationTarget, story: dict[str, Any]
) -> None:
    # When scene 1 of the completed story is regenerated with a new text
    job_id = story["job_id"]
    composed = final_video(target, job_id)
    new_text = "One morning, it leaps, and the wind carries it home."
    answer = target.http("POST", f"/jobs/{job_id}/scenes/1/regenerate", json={"text": new_text})
    assert answer.status_code == 202, answer.text
    # ... a second regenerate while it runs is refused
    again = target.http("POST", f"/jobs/{job_id}/scenes/0/regenerate", json={})
    assert again.status_code == 409, again.text
    done = jobs_api.wait_finished(target, job_id, TIMEOUT, missing_ok=False)
    # Then the story completes again at revision 1
    assert done["status"] == "completed", done.get("error")
    assert done["revision"] == 1 and done["scenes"][1]["text"] == new_text
    # ... scene 0 kept its children; scene 1 has new ones, with the new text
    before = {(c["scene"], c["kind"]): c["job_id"] for c in story["children"]}
    after = {(c["scene"], c["kind"]): c["job_id"] for c in done["children"]}
    assert after[(0, "tts")] == before[(0, "tts")] and after[(0, "video")] == before[(0, "video")]
    assert after[(1, "tts")] != before[(1, "tts")] and after[(1, "video")] != before[(1, "video")]
    assert job(target, after[(1, "tts")])["request"]["text"] == new_text
    # ... and the story was composed again
    assert final_video(target, job_id) != composed


def test_a_story_from_a_prompt_gets_its_scenes_written_and_converted_to_3d(target: IntegrationTarget) -> None:
    # Given a story from a prompt (locally, Converse is answered by the deterministic stand-in writer), in 3D
    job_id = submit(target, {"prompt": "a lighthouse keeper", "aspect": "1:1", "stereo": "half"})
    done = jobs_api.wait_finished(target, job_id, TIMEOUT, missing_ok=False)
    # Then it completes with the written scenes, a stereo child and both videos
    assert done["status"] == "completed", done.get("error")
    assert len(done["scenes"]) >= 1 and all(s["text"] and s["visual_prompt"] for s in done["scenes"])
    kinds = [c["kind"] for c in done["children"]]
    assert kinds.count("tts") == kinds.count("video") == len(done["scenes"]) and kinds.count("stereo") == 1
    stereo = next(c for c in done["children"] if c["kind"] == "stereo")
    assert job(target, stereo["job_id"])["status"] == "completed"
    assert set(done["outputs"]) == {"final.mp4", "stereo.mp4"}
    with av.open(BytesIO(final_video(target, job_id, "stereo.mp4"))) as container:
        width = container.streams.video[0].codec_context.width
        height = container.streams.video[0].codec_context.height
    assert (width, height) == (240, 240)  # half side-by-side keeps the frame size


def test_a_failed_child_fails_the_story_with_its_error_and_job_id(target: IntegrationTarget) -> None:
    # Given a story whose second scene's narration fails (the tts container's injected fault)
    scenes = [{"text": "A calm opening."}, {"text": f"Then {FAULTY_TTS_TEXT} happens."}]
    job_id = submit(target, {"scenes": scenes})
    done = jobs_api.wait_finished(target, job_id, TIMEOUT, missing_ok=False)
    # Then the story failed with the child's error, naming the scene, the kind and the child's job id
    assert done["status"] == "failed"
    failed = next(c for c in done["children"] if c["scene"] == 1 and c["kind"] == "tts")
    child = job(target, failed["job_id"])
    assert child["status"] == "failed"
    assert done["error"]["error"] == child["error"]["error"]
    assert f"scene 1: tts job {failed['job_id']} failed" in done["error"]["cause"]
    # ... and no child is left unfinished
    for c in done["children"]:
        assert job(target, c["job_id"])["status"] in jobs_api.FINISHED


@pytest.fixture
def held_narrations(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Every tts inference waits at the local endpoint until the returned event is set (always set at the
    end), so a story's narrations are in flight when it is cancelled."""
    release = threading.Event()
    original = ModelServer.invoke

    def invoke(self: ModelServer, body: bytes, *args: Any, **kwargs: Any) -> tuple[int, bytes, str]:
        if "/tts/" in json.loads(body).get("input_uri", ""):
            release.wait(TIMEOUT)
        return original(self, body, *args, **kwargs)

    monkeypatch.setattr(ModelServer, "invoke", invoke)
    yield release
    release.set()


@pytest.mark.local_only("the narrations are held inside the local cloud's SageMaker adapter")
def test_cancelling_a_story_aborts_its_children(
    target: IntegrationTarget, held_narrations: threading.Event
) -> None:
    # Given a story whose narrations are in flight
    job_id = submit(target, {"scenes": SCENES})

    def narrating() -> list[dict[str, Any]]:
        tts = [c for c in job(target, job_id)["children"] if c["kind"] == "tts"]
        return [job(target, c["job_id"]) for c in tts]

    running = wait_until(
        narrating,
        TIMEOUT,
        "the narrations running",
        until=lambda jobs: (
            bool(jobs) and all(j["status"] == "running" and j.get("execution_arn") for j in jobs)
        ),
    )
    story_execution = job(target, job_id)["execution_arn"]
    # When the story is cancelled
    cancelled = api(target, "POST", f"/jobs/{job_id}/cancel")
    # Then the story is cancelled and its execution ABORTED
    assert cancelled["status"] == "cancelled"
    assert execution_status(target, story_execution) == "ABORTED"
    # ... and so are the narrations it was waiting on: their jobs cancelled, their executions ABORTED
    for narration in running:
        assert job(target, narration["job_id"])["status"] == "cancelled"
        wait_until(
            lambda arn=narration["execution_arn"]: execution_status(target, arn),
            30,
            f"{narration['job_id']} aborted",
            until=lambda status: status == "ABORTED",
        )
    # ... and every other child is finished (a clip that was done before the cancel keeps its status)
    for child in job(target, job_id)["children"]:
        assert job(target, child["job_id"])["status"] in jobs_api.FINISHED


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scenes": []}, "scenes"),
        ({"scenes": [{"text": "x"}] * 51}, "scenes"),
        ({"scenes": [{"text": ""}]}, "scenes.0.text"),
        ({"scenes": [{"text": "x"}], "aspect": "4:3"}, "aspect"),
        ({"scenes": [{"text": "x"}], "music_uri": "s3://somebody-elses-bucket/music.mp3"}, "music_uri"),
        ({"scenes": [{"text": "x"}], "prompt": "and a prompt"}, "scenes"),
    ],
)
def test_a_bad_story_is_refused_naming_the_field(
    target: IntegrationTarget, body: dict[str, Any], field: str
) -> None:
    # When a bad story is submitted
    answer = target.http("POST", "/jobs", json={"kind": "story", **body})
    # Then 400 naming the field, and no job is created
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field, answer.json()


def test_a_retried_plan_of_a_finished_story_adds_no_child(target: IntegrationTarget) -> None:
    # Given the deployed StoryScenesFunction and a story job
    job_id = submit(target, {"scenes": SCENES})
    event = json.loads((EVENTS / "story_scenes_given.json").read_text(encoding="utf-8"))
    done = jobs_api.wait_finished(target, job_id, TIMEOUT, missing_ok=False)
    assert done["status"] == "completed", done.get("error")
    # When it plans a retried revision 0 of that story (as a Lambda retry would)
    event["job_id"], event["request"] = job_id, done["request"]
    answer = target.client("lambda").invoke(
        FunctionName=target.physical_id("StoryScenesFunction"), Payload=json.dumps(event).encode()
    )
    body = json.loads(answer["Payload"].read())
    # Then a finished story is not planned again (a 409-like Conflict), and no child was added
    assert answer.get("FunctionError"), body
    assert "cannot be planned" in body["errorMessage"]
    assert [c["job_id"] for c in job(target, job_id)["children"]] == [c["job_id"] for c in done["children"]]
