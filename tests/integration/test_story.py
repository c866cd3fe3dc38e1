"""The story workflow's pieces that are deployed so far (issue 11): the scenes function answers given scenes
without an LLM, and `POST /jobs {kind: story}` is still refused as a kind with no workflow in this stack."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.target import IntegrationTarget

EVENTS = Path(__file__).resolve().parents[1] / "events"


def test_the_scenes_function_returns_given_scenes_as_map_items(target: IntegrationTarget) -> None:
    # Given the deployed StoryScenesFunction and a story event with two given scenes
    event = json.loads((EVENTS / "story_scenes_given.json").read_text(encoding="utf-8"))
    # When it is invoked
    answer = target.client("lambda").invoke(
        FunctionName=target.physical_id("StoryScenesFunction"), Payload=json.dumps(event).encode()
    )
    body = json.loads(answer["Payload"].read())
    # Then each scene is a Map item; a scene without a visual prompt shows its narration
    assert "FunctionError" not in answer, body
    assert body["count"] == 2
    assert [s["index"] for s in body["scenes"]] == [0, 1]
    assert body["scenes"][1]["visual_prompt"] == "One morning, it leaps."


def test_a_story_is_refused_as_a_kind_without_a_workflow_until_its_machine_is_deployed(
    target: IntegrationTarget,
) -> None:
    # Given the stack (no story state machine yet)  When a valid story is submitted
    body = {"kind": "story", "scenes": [{"text": "A fox dreams of the sky."}], "aspect": "9:16"}
    answer = target.http("POST", "/jobs", json=body)
    # Then 400 on kind, naming the missing workflow
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "kind" and "no workflow" in answer.json()["message"]
