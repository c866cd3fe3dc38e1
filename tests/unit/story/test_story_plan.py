"""storyflow.story.plan on the template's Jobs table and the output bucket (moto): a tts and a video child
job per scene (derived ids, requests built from the story, execution inputs from the registry), the Map's
runs file and compose's scene list, a retried plan that creates nothing new, a regenerate that re-runs one
scene and keeps the others, and the stereo child (Given/When/Then)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from storyflow import aws, keys, registry
from storyflow import scenes as sc
from storyflow.errors import Conflict
from storyflow.jobstore import JobStore
from storyflow.keys import S3Location
from storyflow.models import (
    ChildJob,
    Job,
    JobKind,
    JobStatus,
    Progress,
    StereoRequest,
    StoryRequest,
    StoryScene,
    TtsRequest,
    VideoRequest,
)
from storyflow.story import PlanEnv, PlanEvent, ScenePlanError, clip_size, plan, task_id
from tests.unit.story.conftest import CLIP_FRAMES, SCENES, STORY, running_story, story_request

OTHER_STORY = "story-20261201-ffffffffffff"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
TAG = {keys.LIFECYCLE_TAG_KEY: keys.LIFECYCLE_TAG_INTERMEDIATE}


# ---------------------------------------------------------------- helpers
def event(request: dict[str, Any], revision: int = 0, regenerate: int | None = None) -> PlanEvent:
    """The state machine's input to its Plan step."""
    return PlanEvent.model_validate(
        {"job_id": STORY, "request": request, "revision": revision, "regenerate": regenerate}
    )


def child_ids(scene: int, revision: int = 0, story: str = STORY) -> dict[str, str]:
    """The derived ids of a scene's children at a revision: the registry's, from (story, task id)."""
    task = task_id(scene, revision)
    return {kind: keys.derived_job_id(kind, story, task) for kind in ("tts", "video")}


def read_json(bucket: str, key: str) -> Any:
    return json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def tags(bucket: str, key: str) -> dict[str, str]:
    tag_set = aws.client("s3").get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {t["Key"]: t["Value"] for t in tag_set}


def all_jobs(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    items = aws.table(stack["JOBS_TABLE"]).scan(ConsistentRead=True)["Items"]
    return {str(item["job_id"]): item for item in items}


def compose_entry(out: str, story: str, task: str, tts_job: str) -> dict[str, str]:
    return {
        "clip_uri": f"s3://{out}/videos/{story}/{task}/0.mp4",
        "narration_uri": f"s3://{out}/tts/{tts_job}/narration.wav",
        "words_uri": f"s3://{out}/tts/{tts_job}/words.json",
    }


def finish(store: JobStore, job_id: str, status: JobStatus = JobStatus.COMPLETED) -> None:
    """A child's own workflow ran it to `status` (via running, as its state machine does)."""
    store.transition(job_id, JobStatus.RUNNING)
    store.transition(job_id, status)


def bedrock() -> Any:
    return boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def tool_answer(scenes: list[dict[str, str]]) -> dict[str, Any]:
    """A Converse answer calling the forced write_scenes tool (see test_story_scenes.py)."""
    return {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"toolUse": {"toolUseId": "t1", "name": sc.TOOL_NAME, "input": {"scenes": scenes}}}
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 20, "totalTokens": 30},
        "metrics": {"latencyMs": 5},
    }


# ---------------------------------------------------------------- clip_size
@pytest.mark.parametrize(
    ("aspect", "short_side", "size"),
    [
        ("16:9", 720, (1280, 720)),
        ("9:16", 720, (720, 1280)),
        ("1:1", 720, (720, 720)),
        ("16:9", 240, (416, 240)),  # 426.67 rounded down to a multiple of 16
        ("9:16", 240, (240, 416)),
        ("1:1", 240, (240, 240)),
        ("16:9", 730, (1280, 720)),  # the short side itself is rounded down to a multiple of 16
    ],
)
def test_clip_size_keeps_the_short_side_and_multiples_of_16(
    aspect: str, short_side: int, size: tuple[int, int]
) -> None:
    assert clip_size(aspect, short_side) == size
    assert all(side % 16 == 0 for side in size)


# ---------------------------------------------------------------- revision 0: given scenes
def test_given_scenes_get_a_tts_and_a_video_child_each_and_the_plan_files(
    store: JobStore, env: PlanEnv, stack: dict[str, Any]
) -> None:
    # Given a running story of three given scenes, a non-default voice and a portrait aspect
    request = story_request(voice="bm_george", aspect="9:16")
    running_story(store, request)

    # When its revision 0 is planned
    got = plan(event(request), env)

    # Then each scene has a tts and a video child, with derived ids, the story as parent, queued
    out, inp = stack["OUTPUT_BUCKET"], stack["INPUT_BUCKET"]
    width, height = clip_size("9:16", 720)
    assert (width, height) == (720, 1280)
    for scene, given in enumerate(SCENES):
        ids = child_ids(scene)
        tts, video = store.get(ids["tts"]), store.get(ids["video"])
        assert (tts.kind, video.kind) == (JobKind.TTS, JobKind.VIDEO)
        assert tts.parent_id == video.parent_id == STORY
        assert tts.status is video.status is JobStatus.QUEUED
        # ... whose requests come from the story: its voice, the scene's text, the clip size of its aspect,
        # the env's frame count, and the visual prompt (the text when the scene gives none)
        assert tts.request == TtsRequest(
            text=given["text"], voice="bm_george", parent_id=STORY, task_id=task_id(scene, 0)
        ).model_dump(mode="json")
        assert video.request == VideoRequest(
            parent_id=STORY,
            task_id=task_id(scene, 0),
            prompt=given.get("visual_prompt") or given["text"],
            width=width,
            height=height,
            num_frames=CLIP_FRAMES,
            image_uri=given.get("image_uri"),
        ).model_dump(mode="json")
    assert store.get(child_ids(1)["video"]).request["prompt"] == "One morning, it leaps."
    assert store.get(child_ids(2)["video"]).request["image_uri"] == SCENES[2]["image_uri"]
    assert len(all_jobs(stack)) == 1 + 2 * len(SCENES)  # nothing else was created

    # ... the runs file has one item per scene, each child's input exactly its registry entry's payload
    runs_key = f"jobs/{STORY}/plan/r0-runs.json"
    runs = read_json(out, runs_key)
    assert [item["scene"] for item in runs] == [0, 1, 2]
    for item in runs:
        ids = child_ids(item["scene"])
        assert set(item) == {"scene", "tts", "video"}
        for kind, model in (("tts", TtsRequest), ("video", VideoRequest)):
            job = store.get(ids[kind])
            expected = registry.get(kind).payload(ids[kind], model.model_validate(job.request), None)
            assert item[kind] == {"job_id": ids[kind], "input": expected}
    assert runs[0]["video"]["input"]["output_prefix"] == f"videos/{STORY}/scene-00-r0/"

    # ... compose's list names where each child writes its clip, narration and words
    compose_key = f"jobs/{STORY}/plan/r0-compose.json"
    assert read_json(out, compose_key) == [
        compose_entry(out, STORY, task_id(scene, 0), child_ids(scene)["tts"]) for scene in range(3)
    ]
    # ... both files tagged to expire as intermediates
    assert tags(out, runs_key) == TAG and tags(out, compose_key) == TAG

    # ... the story records its scenes, its children (by scene, tts then video) and progress 0 of 3
    story = store.get(STORY)
    assert story.scenes == [StoryScene.model_validate(s) for s in SCENES]
    assert story.children == [
        ChildJob(kind=JobKind(kind), job_id=child_ids(scene)[kind], scene=scene)
        for scene in range(3)
        for kind in ("tts", "video")
    ]
    assert story.progress == Progress(done=0, total=3)
    assert story.status is JobStatus.RUNNING and story.revision == 0

    # ... and the state machine gets its $.plan
    assert got == {
        "job_id": STORY,
        "revision": 0,
        "count": 3,
        "runs": 3,
        "runs_key": runs_key,
        "compose_uri": f"s3://{out}/{compose_key}",
        "music_uri": "",
        "stereo": None,
    }
    assert inp not in json.dumps(read_json(out, compose_key))  # compose reads the output bucket only


def test_the_music_uri_is_passed_to_compose(store: JobStore, env: PlanEnv, stack: dict[str, Any]) -> None:
    music = f"s3://{stack['INPUT_BUCKET']}/music/theme.mp3"
    request = story_request(music_uri=music)
    running_story(store, request)
    assert plan(event(request), env)["music_uri"] == music


def test_the_clip_size_follows_the_env_short_side(store: JobStore, stack: dict[str, Any]) -> None:
    # Given the function configured for a 240-pixel short side and a square story
    env = PlanEnv.model_validate(
        {
            "JOBS_TABLE": stack["JOBS_TABLE"],
            "INPUT_BUCKET": stack["INPUT_BUCKET"],
            "OUTPUT_BUCKET": stack["OUTPUT_BUCKET"],
            "STORY_SHORT_SIDE": "240",
        }
    )
    request = story_request(aspect="1:1")
    running_story(store, request)
    # When planned  Then every clip is 240x240, with the default frame count
    plan(event(request), env)
    video = store.get(child_ids(0)["video"]).request
    assert (video["width"], video["height"], video["num_frames"]) == (240, 240, 121)


# ---------------------------------------------------------------- a retried plan
def test_a_retried_plan_creates_no_other_child_and_returns_the_same_plan(
    store: JobStore, env: PlanEnv, stack: dict[str, Any]
) -> None:
    # Given a story whose plan already ran once (its Lambda is retried after it wrote everything)
    request = story_request()
    running_story(store, request)
    first = plan(event(request), env)
    jobs_before = all_jobs(stack)
    runs_before = read_json(stack["OUTPUT_BUCKET"], first["runs_key"])

    # When the plan runs again
    again = plan(event(request), env)

    # Then the same plan, the same children (not re-created: same created_at), the same runs file
    assert again == first
    jobs_after = all_jobs(stack)
    assert set(jobs_after) == set(jobs_before)
    for job_id, item in jobs_before.items():
        if job_id != STORY:
            assert jobs_after[job_id] == item, job_id
    assert read_json(stack["OUTPUT_BUCKET"], again["runs_key"]) == runs_before
    assert len(store.get(STORY).children) == 2 * len(SCENES)


@pytest.mark.parametrize("parent", [OTHER_STORY, None], ids=["another-parent", "no-parent"])
def test_a_job_with_a_childs_id_that_is_not_this_storys_child_is_a_plan_error(
    store: JobStore, env: PlanEnv, parent: str | None
) -> None:
    # Given a job that has the id scene 1's video child would get, but belongs to another story (or none)
    request = story_request()
    running_story(store, request)
    squatter = child_ids(1)["video"]
    store.create(JobKind.VIDEO, squatter, {"kind": "video"}, parent_id=parent)

    # When the story is planned  Then ScenePlanError naming the job; the other job is not adopted
    with pytest.raises(ScenePlanError, match=squatter):
        plan(event(request), env)
    assert store.get(squatter).parent_id == parent
    assert store.get(STORY).children == []


def test_a_cancelled_story_is_not_planned(store: JobStore, env: PlanEnv) -> None:
    # Given a story cancelled before its plan wrote its record
    request = story_request()
    running_story(store, request)
    store.transition(STORY, JobStatus.CANCELLED)
    # When planned  Then the record is refused (409), and the story keeps no children
    with pytest.raises(Conflict):
        plan(event(request), env)
    assert store.get(STORY).children == []


# ---------------------------------------------------------------- a prompt story
def test_a_prompt_storys_scenes_come_from_converse(store: JobStore, env: PlanEnv) -> None:
    # Given a prompt story and Bedrock answering the forced tool with two scenes
    request = story_request(prompt="a fox learns to fly")
    running_story(store, request)
    written = [
        {"text": "The fox dreams of the sky.", "visual_prompt": "a fox looking up at clouds"},
        {"text": "It leaps.", "visual_prompt": "a fox mid-air over a cliff, golden hour"},
    ]
    client = bedrock()
    with Stubber(client) as stub:
        stub.add_response("converse", tool_answer(written), sc.converse_request("a fox learns to fly", MODEL))
        # When planned
        got = plan(event(request), env, bedrock=client)
        stub.assert_no_pending_responses()

    # Then the story has the model's scenes, and each its children, the clip showing its visual prompt
    assert got["count"] == 2 and got["runs"] == 2
    story = store.get(STORY)
    assert [(s.text, s.visual_prompt) for s in story.scenes] == [
        (w["text"], w["visual_prompt"]) for w in written
    ]
    assert len(story.children) == 4
    for scene, w in enumerate(written):
        ids = child_ids(scene)
        assert store.get(ids["tts"]).request["text"] == w["text"]
        assert store.get(ids["video"]).request["prompt"] == w["visual_prompt"]
    assert story.progress == Progress(done=0, total=2)


def test_a_retried_plan_of_a_prompt_story_keeps_its_first_scenes(
    store: JobStore, env: PlanEnv, stack: dict[str, Any]
) -> None:
    # Given a prompt story planned once with two scenes
    request = story_request(prompt="a fox learns to fly")
    running_story(store, request)
    client = bedrock()
    first_answer = [
        {"text": "The fox dreams.", "visual_prompt": "a fox"},
        {"text": "It leaps.", "visual_prompt": "x"},
    ]
    second_answer = [*first_answer, {"text": "It flies.", "visual_prompt": "a fox in the sky"}]
    with Stubber(client) as stub:
        stub.add_response("converse", tool_answer(first_answer))
        first = plan(event(request), env, bedrock=client)
    jobs = set(all_jobs(stack))

    # When its plan is retried and the model (temperature 0.7) would now write three scenes
    with Stubber(client) as stub:
        stub.add_response("converse", tool_answer(second_answer))
        again = plan(event(request), env, bedrock=client)

    # Then the retry creates no other child and returns the same plan
    assert set(all_jobs(stack)) == jobs
    assert again == first


# ---------------------------------------------------------------- regenerate
def planned_and_finished(store: JobStore, env: PlanEnv) -> tuple[dict[str, Any], Job]:
    """Given a story planned at revision 0 whose every child completed, and the story completed."""
    request = story_request()
    running_story(store, request)
    plan(event(request), env)
    for scene in range(len(SCENES)):
        for job_id in child_ids(scene).values():
            finish(store, job_id)
    store.transition(STORY, JobStatus.COMPLETED)
    return request, store.get(STORY)


def test_a_regenerate_re_runs_only_its_scene_and_keeps_the_others(
    store: JobStore, env: PlanEnv, stack: dict[str, Any]
) -> None:
    # Given a completed 3-scene story, reopened at revision 1 with scene 1's text replaced
    request, story = planned_and_finished(store, env)
    out = stack["OUTPUT_BUCKET"]
    before = read_json(out, f"jobs/{STORY}/plan/r0-compose.json")
    store.reopen(story, 1, StoryScene(text="It leaps higher."), "arn:aws:states:us-east-1:1:execution:s:x-r1")
    jobs_before = set(all_jobs(stack))

    # When revision 1 is planned for scene 1
    got = plan(event(request, revision=1, regenerate=1), env)

    # Then only scene 1 gets new children, task scene-01-r1, narrating the new text
    new = child_ids(1, revision=1)
    assert set(all_jobs(stack)) - jobs_before == set(new.values())
    assert store.get(new["tts"]).request["text"] == "It leaps higher."
    assert store.get(new["tts"]).request["task_id"] == "scene-01-r1"
    assert store.get(new["video"]).request["task_id"] == "scene-01-r1"
    assert all(store.get(job_id).parent_id == STORY for job_id in new.values())
    # ... the runs file holds scene 1 alone
    runs = read_json(out, f"jobs/{STORY}/plan/r1-runs.json")
    assert [item["scene"] for item in runs] == [1]
    assert {runs[0]["tts"]["job_id"], runs[0]["video"]["job_id"]} == set(new.values())
    # ... compose reads scenes 0 and 2 where revision 0 wrote them, scene 1 from its new children
    compose = read_json(out, f"jobs/{STORY}/plan/r1-compose.json")
    assert compose[0] == before[0] and compose[2] == before[2]
    assert compose[1] == compose_entry(out, STORY, "scene-01-r1", new["tts"])
    assert compose[1] != before[1]
    # ... the story's children are the kept ones and scene 1's new ones; progress 2 of 3 done
    story = store.get(STORY)
    assert story.children == [
        ChildJob(kind=JobKind(kind), job_id=(new if scene == 1 else child_ids(scene))[kind], scene=scene)
        for scene in range(3)
        for kind in ("tts", "video")
    ]
    assert story.progress == Progress(done=2, total=3)
    assert story.scenes[1].text == "It leaps higher." and story.scenes[0].text == SCENES[0]["text"]
    assert got["revision"] == 1 and got["count"] == 3 and got["runs"] == 1
    assert got["runs_key"] == f"jobs/{STORY}/plan/r1-runs.json"
    # ... and the kept children were not touched
    for scene in (0, 2):
        assert all(store.get(j).status is JobStatus.COMPLETED for j in child_ids(scene).values())


def test_a_retried_regenerate_plan_creates_nothing_new(
    store: JobStore, env: PlanEnv, stack: dict[str, Any]
) -> None:
    request, story = planned_and_finished(store, env)
    store.reopen(story, 0, StoryScene(text="Again."), "arn:aws:states:us-east-1:1:execution:s:x-r1")
    first = plan(event(request, revision=1, regenerate=0), env)
    jobs = set(all_jobs(stack))
    again = plan(event(request, revision=1, regenerate=0), env)
    assert again == first and set(all_jobs(stack)) == jobs
    assert store.get(STORY).progress == Progress(done=2, total=3)


def test_a_regenerate_of_a_failed_story_also_re_runs_the_scenes_it_did_not_finish(
    store: JobStore, env: PlanEnv, stack: dict[str, Any]
) -> None:
    # Given a failed story: scene 0 done, scene 1's video failed (its tts done), scene 2's video cancelled
    request = story_request()
    running_story(store, request)
    plan(event(request), env)
    for scene, (tts_end, video_end) in enumerate(
        [
            (JobStatus.COMPLETED, JobStatus.COMPLETED),
            (JobStatus.COMPLETED, JobStatus.FAILED),
            (JobStatus.COMPLETED, JobStatus.CANCELLED),
        ]
    ):
        ids = child_ids(scene)
        finish(store, ids["tts"], tts_end)
        finish(store, ids["video"], video_end)
    store.transition(STORY, JobStatus.FAILED)
    # ... reopened to regenerate scene 0
    store.reopen(store.get(STORY), 0, StoryScene(text="A new start."), "arn:x")

    # When revision 1 is planned for scene 0
    got = plan(event(request, revision=1, regenerate=0), env)

    # Then scene 0 (asked) and scenes 1 and 2 (unfinished) get revision-1 children; nothing is done yet
    runs = read_json(stack["OUTPUT_BUCKET"], f"jobs/{STORY}/plan/r1-runs.json")
    assert [item["scene"] for item in runs] == [0, 1, 2]
    assert got["runs"] == 3
    story = store.get(STORY)
    assert {c.job_id for c in story.children} == {j for s in range(3) for j in child_ids(s, 1).values()}
    assert story.progress == Progress(done=0, total=3)


def test_a_regenerate_of_a_failed_story_keeps_its_finished_scenes(
    store: JobStore, env: PlanEnv, stack: dict[str, Any]
) -> None:
    # Given a failed story whose scenes 0 and 2 completed and scene 1's tts is still queued
    request = story_request()
    running_story(store, request)
    plan(event(request), env)
    for scene in (0, 2):
        for job_id in child_ids(scene).values():
            finish(store, job_id)
    finish(store, child_ids(1)["video"])
    store.transition(STORY, JobStatus.FAILED)
    store.reopen(store.get(STORY), 2, StoryScene(text="The end, again."), "arn:x")

    # When scene 2 is regenerated
    plan(event(request, revision=1, regenerate=2), env)

    # Then scenes 1 (unfinished) and 2 (asked) re-run; scene 0 is kept
    runs = read_json(stack["OUTPUT_BUCKET"], f"jobs/{STORY}/plan/r1-runs.json")
    assert [item["scene"] for item in runs] == [1, 2]
    story = store.get(STORY)
    kept = {c.job_id for c in story.children if c.scene == 0}
    assert kept == set(child_ids(0).values())
    assert story.progress == Progress(done=1, total=3)


@pytest.mark.parametrize("scene", [3, 10])
def test_a_regenerate_of_a_scene_the_story_does_not_have_is_a_plan_error(
    store: JobStore, env: PlanEnv, stack: dict[str, Any], scene: int
) -> None:
    request, _ = planned_and_finished(store, env)
    jobs = set(all_jobs(stack))
    with pytest.raises(ScenePlanError, match=f"no scene {scene}"):
        plan(event(request, revision=1, regenerate=scene), env)
    assert set(all_jobs(stack)) == jobs


def test_a_plan_of_a_revision_the_story_is_not_at_is_a_conflict(store: JobStore, env: PlanEnv) -> None:
    # Given a completed story at revision 0 that was never reopened
    request, _ = planned_and_finished(store, env)
    # When a revision-1 regenerate is planned anyway  Then its record is refused
    with pytest.raises(Conflict):
        plan(event(request, revision=1, regenerate=0), env)


# ---------------------------------------------------------------- stereo
def test_a_stereo_story_gets_a_stereo_child_reading_a_copy_of_the_composed_video(
    store: JobStore, env: PlanEnv, stack: dict[str, Any]
) -> None:
    # Given a story asking for full side-by-side 3D
    request = story_request(stereo="full")
    running_story(store, request)

    # When planned
    got = plan(event(request), env)

    # Then a stereo child with the derived id, the story as parent
    stereo_id = keys.derived_job_id("stereo", STORY, "r0")
    inp, out = stack["INPUT_BUCKET"], stack["OUTPUT_BUCKET"]
    child = store.get(stereo_id)
    assert child.kind is JobKind.STEREO and child.parent_id == STORY and child.status is JobStatus.QUEUED
    assert child.request == StereoRequest(layout="full").model_dump(mode="json")
    # ... whose input reads its source from segments/{stereo job}/source.mp4 in the input bucket
    source = S3Location(inp, f"segments/{stereo_id}/source.mp4")
    assert got["stereo"] == {
        "job_id": stereo_id,
        "input": registry.get("stereo").payload(stereo_id, StereoRequest(layout="full"), source),
        "source": {"bucket": inp, "key": f"segments/{stereo_id}/source.mp4"},
        "copy_source": f"{out}/jobs/{STORY}/final.mp4",
        "output_uri": f"s3://{out}/jobs/{stereo_id}/final.mp4",
    }
    assert got["stereo"]["input"]["source"] == {"bucket": inp, "key": f"segments/{stereo_id}/source.mp4"}
    assert got["stereo"]["input"]["params"]["layout"] == "full"
    # ... listed last among the story's children, for the whole story (no scene)
    assert store.get(STORY).children[-1] == ChildJob(kind=JobKind.STEREO, job_id=stereo_id, scene=None)
    assert len(store.get(STORY).children) == 2 * len(SCENES) + 1


def test_a_stereo_storys_regenerate_gets_a_new_stereo_child(
    store: JobStore, env: PlanEnv, stack: dict[str, Any]
) -> None:
    request = story_request(stereo="half")
    running_story(store, request)
    plan(event(request), env)
    for job in store.get(STORY).children:
        finish(store, job.job_id)
    store.transition(STORY, JobStatus.COMPLETED)
    store.reopen(store.get(STORY), 0, StoryScene(text="Again."), "arn:x")
    got = plan(event(request, revision=1, regenerate=0), env)
    stereo_id = keys.derived_job_id("stereo", STORY, "r1")
    assert got["stereo"]["job_id"] == stereo_id
    stereo_children = [c.job_id for c in store.get(STORY).children if c.kind is JobKind.STEREO]
    assert stereo_children == [stereo_id]


def test_the_plan_event_validates_its_request() -> None:
    with pytest.raises(ValueError, match="prompt or scenes"):
        PlanEvent.model_validate({"job_id": STORY, "request": {"kind": "story"}})
    parsed = event(StoryRequest.model_validate({"scenes": SCENES}).model_dump(mode="json"))
    assert parsed.revision == 0 and parsed.regenerate is None
