"""The story's scenes: given scenes call no LLM; a prompt asks Bedrock Converse with a forced JSON-schema tool
(botocore Stubber: moto's bedrock-runtime has no Converse), and a bad answer is a typed failure."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from storyflow import scenes as sc
from storyflow.models import StoryRequest

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
JOB = "sy-20261201-0a1b2c3d4e5f"


def bedrock() -> Any:
    return boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def tool_answer(tool_input: dict[str, Any], name: str = sc.TOOL_NAME) -> dict[str, Any]:
    return {
        "output": {
            "message": {
                "role": "assistant",
                "content": [{"toolUse": {"toolUseId": "t1", "name": name, "input": tool_input}}],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 20, "totalTokens": 30},
        "metrics": {"latencyMs": 5},
    }


def test_given_scenes_call_no_llm() -> None:
    # Given a request with scenes and a client that would refuse any call
    client = bedrock()
    request = StoryRequest.model_validate({"scenes": [{"text": "A fox.", "image_uri": "s3://b-in/f.png"}]})
    with Stubber(client) as stub:  # no responses queued: any call raises
        got = sc.story_scenes(request, MODEL, client)
        stub.assert_no_pending_responses()
    # Then they come back as given (the plan falls back to the text for a missing visual prompt)
    assert [(s.text, s.visual_prompt, s.image_uri) for s in got] == [("A fox.", None, "s3://b-in/f.png")]


def test_a_prompt_asks_converse_with_the_forced_tool_and_its_schema() -> None:
    client = bedrock()
    request = StoryRequest.model_validate({"prompt": "a fox learns to fly"})
    answer = tool_answer(
        {
            "scenes": [
                {"text": "The fox dreams of the sky.", "visual_prompt": "a fox looking up at clouds"},
                {"text": "It leaps.", "visual_prompt": "a fox mid-air over a cliff, golden hour"},
            ]
        }
    )
    with Stubber(client) as stub:
        stub.add_response("converse", answer, sc.converse_request("a fox learns to fly", MODEL))
        got = sc.story_scenes(request, MODEL, client)
        stub.assert_no_pending_responses()
    assert [(s.text, s.visual_prompt) for s in got] == [
        ("The fox dreams of the sky.", "a fox looking up at clouds"),
        ("It leaps.", "a fox mid-air over a cliff, golden hour"),
    ]
    params = sc.converse_request("x", MODEL)
    assert params["toolConfig"]["toolChoice"] == {"tool": {"name": sc.TOOL_NAME}}
    schema = params["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]
    assert schema["properties"]["scenes"]["items"]["required"] == ["text", "visual_prompt"]


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (tool_answer({"scenes": []}), "no scenes"),
        (tool_answer({"scenes": [{"text": "", "visual_prompt": "p"}]}), "bad scene"),
        (tool_answer({"scenes": [{"text": "t"}]}, name="other_tool"), "did not call"),
        (
            {
                "output": {"message": {"role": "assistant", "content": [{"text": "Once upon a time"}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
                "metrics": {"latencyMs": 1},
            },
            "did not call",
        ),
    ],
)
def test_an_unusable_answer_is_scene_writer_failed(answer: dict[str, Any], says: str) -> None:
    client = bedrock()
    request = StoryRequest.model_validate({"prompt": "a fox"})
    with Stubber(client) as stub:
        stub.add_response("converse", answer)
        with pytest.raises(sc.SceneWriterFailed, match=says):
            sc.story_scenes(request, MODEL, client)


def test_a_bedrock_error_propagates_as_the_client_error() -> None:
    client = bedrock()
    with Stubber(client) as stub:
        stub.add_client_error("converse", "ThrottlingException", "slow down", 429)
        with pytest.raises(client.exceptions.ThrottlingException):
            sc.story_scenes(StoryRequest.model_validate({"prompt": "a fox"}), MODEL, client)
