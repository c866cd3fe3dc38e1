"""A stand-in for Bedrock's Converse API: a small deterministic scene writer, not a language model.

moto has no Converse. A story submitted with a `prompt` asks Bedrock (through the StoryScenes function)
to call the `write_scenes` tool; locally this writer answers that call the way the model must: a tool
use whose input is `{"scenes": [{"text", "visual_prompt"}, ...]}`. It splits the prompt into sentences
(one scene each, up to the scene count the request asks for), or, for a one-sentence prompt, tells it
in three beats. The same prompt always gives the same scenes, so tests and the demo are reproducible.

What AWS would refuse is refused here too: a request without messages is a ValidationException, and a
forced tool the request does not define is a ValidationException. A request with no tools gets a text
answer (stopReason end_turn), as a model would give.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from storyflow_local.patching import Patches

MAX_SCENES = 12
_COUNT = re.compile(r"in about (\d+) scenes", re.IGNORECASE)
_ABOUT = re.compile(r"about:\s*(.+)$", re.IGNORECASE | re.DOTALL)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_BEATS = (
    ("It begins with {p}.", "establishing wide shot of {p}, soft morning light, gentle camera push-in"),
    ("Then everything changes for {p}.", "close-up of {p}, dramatic side light, handheld camera"),
    ("In the end, {p} finds a way home.", "{p} at golden hour, warm light, slow dolly out"),
)


class ValidationException(Exception):
    """Bedrock's 400 for a malformed request."""


def write_scenes(prompt: str, wanted: int = 3) -> list[dict[str, str]]:
    """The scenes of a prompt: its sentences (at most `wanted`), or three beats around a one-liner."""
    text = " ".join(prompt.split())
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    if len(sentences) >= 2:
        picked = sentences[: max(1, min(wanted, MAX_SCENES))]
        return [{"text": s, "visual_prompt": f"{s.rstrip('.!?')}, cinematic, soft light"} for s in picked]
    subject = text.rstrip(".!?") or "a quiet place"
    return [{"text": t.format(p=subject), "visual_prompt": v.format(p=subject)} for t, v in _BEATS]


def _prompt_of(messages: Any) -> tuple[str, int]:
    """The last user message's text after 'about:' (storyflow.scenes' phrasing) and the scene count."""
    if not isinstance(messages, list) or not messages:
        raise ValidationException(
            "1 validation error detected: Value at 'messages' failed to satisfy constraint"
        )
    texts = [
        block.get("text", "")
        for message in messages
        if isinstance(message, dict) and message.get("role") == "user"
        for block in message.get("content") or []
        if isinstance(block, dict)
    ]
    text = texts[-1] if texts else ""
    count = _COUNT.search(text)
    about = _ABOUT.search(text)
    return (about.group(1) if about else text), (int(count.group(1)) if count else 3)


def converse(model_id: str, messages: Any, tool_config: Any) -> dict[str, Any]:
    """The Converse answer to a request (see the module docstring)."""
    prompt, wanted = _prompt_of(messages)
    tools = [t.get("toolSpec", {}) for t in (tool_config or {}).get("tools", []) if isinstance(t, dict)]
    forced = ((tool_config or {}).get("toolChoice") or {}).get("tool", {}).get("name")
    names = [t.get("name") for t in tools]
    if forced and forced not in names:
        raise ValidationException(f"toolChoice names {forced!r}, which is not in toolConfig.tools")
    digest = hashlib.sha256(f"{model_id}\n{prompt}".encode()).hexdigest()[:24]
    if tools:
        name = forced or names[0]
        scenes = write_scenes(prompt, wanted)
        content: list[dict[str, Any]] = [
            {"toolUse": {"toolUseId": f"tooluse_{digest}", "name": name, "input": {"scenes": scenes}}}
        ]
        stop, produced = "tool_use", sum(len(s["text"]) + len(s["visual_prompt"]) for s in scenes) // 4
    else:
        reply = " ".join(s["text"] for s in write_scenes(prompt, wanted))
        content, stop, produced = [{"text": reply}], "end_turn", len(reply) // 4
    used = max(1, len(prompt) // 4)
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": used, "outputTokens": produced, "totalTokens": used + produced},
        "metrics": {"latencyMs": 1},
    }


def install(patches: Patches) -> None:
    from moto.bedrockruntime.responses import BedrockRuntimeResponse
    from moto.core.exceptions import JsonRESTError
    from moto.core.responses import ActionResult

    def converse_response(self: Any) -> Any:
        try:
            answer = converse(
                str(self._get_param("modelId") or ""),
                self._get_param("messages"),
                self._get_param("toolConfig"),
            )
        except ValidationException as refused:
            raise JsonRESTError("ValidationException", str(refused)) from None
        return ActionResult(answer)

    patches.set(BedrockRuntimeResponse, "converse", converse_response)
