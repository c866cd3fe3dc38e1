"""A story's scenes: the given ones as they are, or written from the prompt by Bedrock (Converse API).

The model must answer through one tool, `write_scenes`, whose input schema is the scene list: the answer
is structured JSON (checked again with StoryScene), never prose to parse. Given scenes call no LLM.
The model id is the stack's `ScenesModelId` parameter (env SCENES_MODEL_ID).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from storyflow import aws
from storyflow.errors import StoryflowError
from storyflow.models import MAX_PROMPT_CHARS, MAX_SCENE_CHARS, StoryRequest, StoryScene

TOOL_NAME = "write_scenes"
DEFAULT_SCENES = 5
MAX_WRITTEN_SCENES = 12

SYSTEM = (
    "You write short narrated stories for video. Split the story into scenes. For each scene give the "
    "narration (1-3 sentences, read aloud in about 5-10 seconds) and a visual prompt describing one "
    "shot for a text-to-video model (subject, setting, lighting, camera; no text on screen). "
    f"Answer only by calling the {TOOL_NAME} tool."
)

SCENES_TOOL: dict[str, Any] = {
    "toolSpec": {
        "name": TOOL_NAME,
        "description": "Return the story's scenes, in order.",
        "inputSchema": {
            "json": {
                "type": "object",
                "properties": {
                    "scenes": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_WRITTEN_SCENES,
                        "items": {
                            "type": "object",
                            "properties": {
                                "text": {
                                    "type": "string",
                                    "description": "the narration, read aloud",
                                    "maxLength": MAX_SCENE_CHARS,
                                },
                                "visual_prompt": {
                                    "type": "string",
                                    "description": "what the scene's clip shows",
                                    "maxLength": MAX_PROMPT_CHARS,
                                },
                            },
                            "required": ["text", "visual_prompt"],
                        },
                    }
                },
                "required": ["scenes"],
            }
        },
    }
}


class SceneWriterFailed(StoryflowError):
    """The model did not answer with usable scenes (no tool call, wrong shape, empty text)."""


def converse_request(prompt: str, model_id: str, scenes: int = DEFAULT_SCENES) -> dict[str, Any]:
    """The Converse call's parameters: the tool is forced, so the answer is the tool's input JSON."""
    return {
        "modelId": model_id,
        "system": [{"text": SYSTEM}],
        "messages": [
            {"role": "user", "content": [{"text": f"Write a story in about {scenes} scenes about: {prompt}"}]}
        ],
        "toolConfig": {"tools": [SCENES_TOOL], "toolChoice": {"tool": {"name": TOOL_NAME}}},
        "inferenceConfig": {"maxTokens": 2048, "temperature": 0.7},
    }


def parse_scenes(response: dict[str, Any]) -> list[StoryScene]:
    """The scenes in a Converse response's `write_scenes` tool call, checked."""
    content = response.get("output", {}).get("message", {}).get("content", [])
    calls = [block["toolUse"] for block in content if "toolUse" in block]
    call = next((c for c in calls if c.get("name") == TOOL_NAME), None)
    if call is None:
        raise SceneWriterFailed(
            f"the model did not call {TOOL_NAME} (stopReason {response.get('stopReason')})"
        )
    raw = call.get("input", {}).get("scenes") if isinstance(call.get("input"), dict) else None
    if not isinstance(raw, list) or not raw:
        raise SceneWriterFailed(f"{TOOL_NAME} input has no scenes list")
    try:
        scenes = [
            StoryScene.model_validate({"text": s.get("text"), "visual_prompt": s.get("visual_prompt")})
            for s in raw[:MAX_WRITTEN_SCENES]
            if isinstance(s, dict)
        ]
    except ValidationError as exc:
        raise SceneWriterFailed(f"{TOOL_NAME} returned a bad scene: {exc.errors()[0]['msg']}") from None
    if not scenes:
        raise SceneWriterFailed(f"{TOOL_NAME} returned no scene objects")
    return scenes


def story_scenes(request: StoryRequest, model_id: str, client: Any | None = None) -> list[StoryScene]:
    """The request's scenes when it gives them (no LLM call); else Bedrock writes them from the prompt."""
    if request.scenes is not None:
        return list(request.scenes)
    if not request.prompt:
        raise SceneWriterFailed("a story needs a prompt or scenes")
    if not model_id:
        raise RuntimeError("SCENES_MODEL_ID is not set in this function's environment")
    bedrock = client if client is not None else aws.client("bedrock-runtime")
    return parse_scenes(bedrock.converse(**converse_request(request.prompt, model_id)))
