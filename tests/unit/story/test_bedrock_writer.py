"""The local cloud's stand-in for Bedrock Converse (storyflow_local.bedrock_writer): a deterministic scene
writer that answers storyflow.scenes' forced `write_scenes` tool call the way the model must, and refuses
what Bedrock would refuse."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from storyflow import scenes as sc
from storyflow.models import StoryRequest
from storyflow_local import bedrock_writer as bw
from storyflow_local.patching import Patches

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def ask(prompt: str, scenes: int = sc.DEFAULT_SCENES) -> dict[str, Any]:
    """The writer's answer to exactly what the StoryScenes function sends."""
    params = sc.converse_request(prompt, MODEL, scenes)
    return bw.converse(params["modelId"], params["messages"], params["toolConfig"])


# ---------------------------------------------------------------- write_scenes
def test_a_one_sentence_prompt_is_told_in_three_beats() -> None:
    got = bw.write_scenes("a fox learns to fly.")
    assert len(got) == 3
    assert [s["text"] for s in got] == [
        "It begins with a fox learns to fly.",
        "Then everything changes for a fox learns to fly.",
        "In the end, a fox learns to fly finds a way home.",
    ]
    assert all("a fox learns to fly" in s["visual_prompt"] for s in got)
    assert all(set(s) == {"text", "visual_prompt"} for s in got)


@pytest.mark.parametrize("wanted", [1, 3, 12])
def test_a_one_sentence_prompt_has_three_beats_whatever_the_count(wanted: int) -> None:
    assert len(bw.write_scenes("a lighthouse keeper", wanted)) == 3


def test_a_multi_sentence_prompt_is_one_scene_per_sentence() -> None:
    got = bw.write_scenes("The fox wakes.  It sees the sky!\n\nIt jumps? It flies.", wanted=10)
    assert [s["text"] for s in got] == ["The fox wakes.", "It sees the sky!", "It jumps?", "It flies."]
    assert got[1]["visual_prompt"] == "It sees the sky, cinematic, soft light"


@pytest.mark.parametrize(("wanted", "count"), [(2, 2), (3, 3), (0, 1), (50, bw.MAX_SCENES)])
def test_a_multi_sentence_prompt_gives_at_most_the_count_asked(wanted: int, count: int) -> None:
    prompt = " ".join(f"Sentence {n}." for n in range(20))
    got = bw.write_scenes(prompt, wanted)
    assert [s["text"] for s in got] == [f"Sentence {n}." for n in range(count)]


def test_an_empty_prompt_still_gets_scenes() -> None:
    got = bw.write_scenes("   ")
    assert len(got) == 3 and all(s["text"] and s["visual_prompt"] for s in got)


def test_the_same_prompt_always_gives_the_same_scenes() -> None:
    assert bw.write_scenes("One. Two. Three.", 3) == bw.write_scenes("One. Two. Three.", 3)
    assert ask("a fox learns to fly") == ask("a fox learns to fly")


# ---------------------------------------------------------------- converse
def test_the_answer_is_a_forced_tool_call_that_parse_scenes_accepts() -> None:
    # Given what storyflow.scenes sends for a one-sentence prompt
    answer = ask("a fox learns to fly")
    # Then a tool_use answer calling write_scenes with the three beats
    assert answer["stopReason"] == "tool_use"
    (block,) = answer["output"]["message"]["content"]
    assert answer["output"]["message"]["role"] == "assistant"
    assert block["toolUse"]["name"] == sc.TOOL_NAME
    assert block["toolUse"]["input"] == {"scenes": bw.write_scenes("a fox learns to fly")}
    # ... which the StoryScenes function reads as valid scenes
    scenes = sc.parse_scenes(answer)
    assert [s.text for s in scenes] == [s["text"] for s in bw.write_scenes("a fox learns to fly")]
    assert all(s.visual_prompt for s in scenes)
    usage = answer["usage"]
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"] and usage["inputTokens"] >= 1


def test_the_scene_count_asked_in_the_message_is_honoured() -> None:
    prompt = "A. B. C. D. E. F. G."
    assert len(sc.parse_scenes(ask(prompt, scenes=5))) == 5
    assert len(sc.parse_scenes(ask(prompt, scenes=2))) == 2


def test_the_prompt_is_read_after_about() -> None:
    # The user message is "Write a story in about N scenes about: <prompt>"; only the prompt is told
    scenes = sc.parse_scenes(ask("The fox wakes. It flies."))
    assert [s.text for s in scenes] == ["The fox wakes.", "It flies."]


def test_a_message_without_the_phrasing_is_the_prompt_in_three_scenes_at_most() -> None:
    messages = [{"role": "user", "content": [{"text": "One. Two. Three. Four."}]}]
    tools = {"tools": [sc.SCENES_TOOL]}
    got = bw.converse(MODEL, messages, tools)
    (block,) = got["output"]["message"]["content"]
    assert [s["text"] for s in block["toolUse"]["input"]["scenes"]] == ["One.", "Two.", "Three."]
    assert block["toolUse"]["name"] == sc.TOOL_NAME  # not forced: the first tool


def test_the_last_user_message_is_the_one_answered() -> None:
    messages = [
        {"role": "user", "content": [{"text": "Write a story in about 3 scenes about: old. older."}]},
        {"role": "assistant", "content": [{"text": "ok"}]},
        {"role": "user", "content": [{"text": "Write a story in about 3 scenes about: New one. New two."}]},
    ]
    got = sc.parse_scenes(bw.converse(MODEL, messages, sc.converse_request("x", MODEL)["toolConfig"]))
    assert [s.text for s in got] == ["New one.", "New two."]


def test_a_forced_tool_that_is_not_defined_is_a_validation_exception() -> None:
    params = sc.converse_request("a fox", MODEL)
    config = copy.deepcopy(params["toolConfig"])
    config["toolChoice"] = {"tool": {"name": "other_tool"}}
    with pytest.raises(bw.ValidationException, match="other_tool"):
        bw.converse(MODEL, params["messages"], config)
    with pytest.raises(bw.ValidationException):
        bw.converse(MODEL, params["messages"], {"tools": [], "toolChoice": {"tool": {"name": sc.TOOL_NAME}}})


@pytest.mark.parametrize("messages", [[], None, "hello"])
def test_a_request_without_messages_is_a_validation_exception(messages: Any) -> None:
    with pytest.raises(bw.ValidationException, match="messages"):
        bw.converse(MODEL, messages, sc.converse_request("x", MODEL)["toolConfig"])


@pytest.mark.parametrize("tool_config", [None, {}, {"tools": []}])
def test_a_request_without_tools_gets_a_text_answer(tool_config: Any) -> None:
    messages = sc.converse_request("The fox wakes. It flies.", MODEL)["messages"]
    answer = bw.converse(MODEL, messages, tool_config)
    assert answer["stopReason"] == "end_turn"
    assert answer["output"]["message"]["content"] == [{"text": "The fox wakes. It flies."}]
    with pytest.raises(sc.SceneWriterFailed, match="did not call"):
        sc.parse_scenes(answer)


def test_the_tool_use_id_depends_on_the_model_and_the_prompt() -> None:
    def tool_use_id(answer: dict[str, Any]) -> str:
        return str(answer["output"]["message"]["content"][0]["toolUse"]["toolUseId"])

    params = sc.converse_request("a fox", MODEL)
    base = tool_use_id(bw.converse(MODEL, params["messages"], params["toolConfig"]))
    other_model = tool_use_id(bw.converse("other-model", params["messages"], params["toolConfig"]))
    other_prompt = tool_use_id(ask("a cat"))
    assert base.startswith("tooluse_") and len({base, other_model, other_prompt}) == 3


# ---------------------------------------------------------------- installed on moto
@pytest.fixture
def patched_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Given moto's bedrock-runtime with the writer installed (as the local cloud does), and a client."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    patches = Patches()
    bw.install(patches)
    try:
        with mock_aws():
            yield boto3.client(
                "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
            )
    finally:
        patches.undo()


def test_installed_the_story_scenes_function_gets_its_scenes_through_boto3(patched_moto: Any) -> None:
    # When the StoryScenes code asks Converse for a prompt story's scenes
    request = StoryRequest.model_validate({"prompt": "The fox wakes. It sees the sky. It flies."})
    got = sc.story_scenes(request, MODEL, patched_moto)
    # Then the writer's scenes come back, through boto3's parsing
    assert [s.text for s in got] == ["The fox wakes.", "It sees the sky.", "It flies."]
    assert got[2].visual_prompt == "It flies, cinematic, soft light"


def test_installed_a_refused_request_is_bedrocks_validation_exception(patched_moto: Any) -> None:
    params = sc.converse_request("a fox", MODEL)
    params["toolConfig"]["toolChoice"] = {"tool": {"name": "other_tool"}}
    with pytest.raises(ClientError) as refused:
        patched_moto.converse(**params)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
