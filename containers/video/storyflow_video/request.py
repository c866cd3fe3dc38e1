"""The job a video task renders: the request stored on the job's Jobs item, checked again here (the
container ships alone and never trusts its input), and Wan's size rule made explicit."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from storyflow_video.errors import InvalidRequest

MAX_PROMPT_CHARS = 4000
SIZE_MULTIPLE = 16  # Wan refuses other sizes (ValueError)
RENDER_MULTIPLE = 32  # ...and silently renders the size rounded down to this (1280x720 -> 1280x704)


def wan_size(width: int, height: int) -> tuple[int, int]:
    """The size Wan 2.2 really renders for a requested size (both multiples of 16): each side rounded down
    to a multiple of 32, as the pipeline does silently; outputs record this size."""
    return width // RENDER_MULTIPLE * RENDER_MULTIPLE, height // RENDER_MULTIPLE * RENDER_MULTIPLE


@dataclass(frozen=True)
class VideoJob:
    prompt: str
    negative_prompt: str = ""
    seed: int | None = None
    steps: int = 15
    guidance: float = 7.0
    width: int = 1280
    height: int = 720
    num_videos: int = 1
    num_frames: int = 121
    fps: int = 24
    image_uri: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def seeds(self) -> list[int]:
        """One seed per video: `seed + n`, or a random base when the request has none (recorded)."""
        base = self.seed if self.seed is not None else random.SystemRandom().randrange(2**32 - 2)
        return [(base + n) % 2**32 for n in range(self.num_videos)]


def _int(request: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = request.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def parse(request: dict[str, Any]) -> VideoJob:
    """The VideoJob of a stored request (the API's VideoRequest as JSON); InvalidRequest names the field."""
    if not isinstance(request, dict):
        raise InvalidRequest("the job has no request object")
    prompt = request.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"prompt must be 1..{MAX_PROMPT_CHARS} characters")
    negative = request.get("negative_prompt") or ""
    if not isinstance(negative, str) or len(negative) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"negative_prompt must be at most {MAX_PROMPT_CHARS} characters")
    seed = request.get("seed")
    if seed is not None:
        seed = _int(request, "seed", 0, 0, 2**32 - 1)
    guidance = request.get("guidance", 7.0)
    if isinstance(guidance, bool) or not isinstance(guidance, int | float) or not 0 <= guidance <= 30:
        raise InvalidRequest(f"guidance must be a number between 0 and 30, got {guidance!r}")
    width = _int(request, "width", 1280, 64, 1920)
    height = _int(request, "height", 720, 64, 1920)
    for name, value in (("width", width), ("height", height)):
        if value % SIZE_MULTIPLE:
            raise InvalidRequest(f"{name} must be a multiple of {SIZE_MULTIPLE}, got {value}")
    frames = _int(request, "num_frames", 121, 5, 241)
    if frames % 4 != 1:
        raise InvalidRequest(f"num_frames must be 4k+1 (e.g. 81, 121), got {frames}")
    image_uri = request.get("image_uri")
    if image_uri is not None and (not isinstance(image_uri, str) or not image_uri.startswith("s3://")):
        raise InvalidRequest(f"image_uri must be an s3:// URI, got {str(image_uri)[:120]!r}")
    return VideoJob(
        prompt=prompt.strip(),
        negative_prompt=negative,
        seed=seed,
        steps=_int(request, "steps", 15, 1, 100),
        guidance=float(guidance),
        width=width,
        height=height,
        num_videos=_int(request, "num_videos", 1, 1, 2),
        num_frames=frames,
        fps=_int(request, "fps", 24, 1, 60),
        image_uri=image_uri,
    )
