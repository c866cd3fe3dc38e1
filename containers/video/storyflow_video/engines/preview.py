"""The `preview` engine (CPU, no weights): a real, watchable clip at the requested size, frame count and fps.

With an input image: the image, cover-fitted, under a slow pan and zoom (seed-chosen direction) with the
prompt as a caption. Text only: an animated title card of the prompt over a drifting gradient whose colours
come from the seed. The same request and seed always give the same frames.
"""

from __future__ import annotations

import colorsys
import textwrap
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np

from storyflow_video.engines import OnStep
from storyflow_video.request import VideoJob

ZOOM = 0.12  # how much the image zooms in over the clip
FADE_SECONDS = 0.5


@lru_cache(maxsize=8)
def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow's scalable built-in font (FreeType)
    except (TypeError, OSError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def _palette(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hue = float(rng.random())
    first = colorsys.hsv_to_rgb(hue, 0.65, 0.55)
    second = colorsys.hsv_to_rgb((hue + 0.33 + 0.2 * float(rng.random())) % 1.0, 0.7, 0.25)
    return np.array(first, np.float32) * 255, np.array(second, np.float32) * 255


def _text_layer(text: str, width: int, max_height: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The prompt rendered white with a soft shadow: (RGB uint8, alpha float32 in [0, 1]), cropped."""
    from PIL import Image, ImageDraw, ImageFilter

    font = _font(size)
    chars = max(8, int(width / (size * 0.55)))
    lines = textwrap.wrap(" ".join(text.split()), chars)[: max(1, max_height // int(size * 1.3))]
    line_height = int(size * 1.3)
    height = line_height * len(lines) + size
    alpha = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(alpha)
    for i, line in enumerate(lines):
        line_width = draw.textlength(line, font=font)
        draw.text(((width - line_width) / 2, size // 2 + i * line_height), line, font=font, fill=255)
    shadow = alpha.filter(ImageFilter.GaussianBlur(max(1, size // 10)))
    ink = np.asarray(alpha, np.float32) / 255.0
    glow = np.asarray(shadow, np.float32) / 255.0
    rgb = np.full((height, width, 3), 255, np.uint8)
    rgb[ink < 0.5] = 0  # shadow pixels are dark; text pixels white
    return rgb, np.maximum(ink, glow * 0.6)


class _Overlay:
    """A text layer blended in integer arithmetic (8-bit alpha), one precomputed table per strength."""

    LEVELS = 32

    def __init__(self, rgb: np.ndarray, alpha: np.ndarray) -> None:
        self.rgb = rgb.astype(np.uint16)
        self.alpha = alpha
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def blend(self, region: np.ndarray, strength: float) -> None:
        level = max(0, min(self.LEVELS, round(strength * self.LEVELS)))
        if level == 0:
            return
        if level not in self._cache:
            a8 = np.rint(self.alpha * (256.0 * level / self.LEVELS)).astype(np.uint16)[..., None]
            self._cache[level] = (self.rgb * a8, 256 - a8)
        premultiplied, inverse = self._cache[level]
        h, w = region.shape[:2]
        region[...] = ((region.astype(np.uint16) * inverse[:h, :w] + premultiplied[:h, :w]) >> 8).astype(
            np.uint8
        )


class PreviewEngine:
    name = "preview"
    encode_preset = "veryfast"  # the encode is most of a preview's time

    def size(self, job: VideoJob) -> tuple[int, int]:
        return job.width, job.height

    def steps(self, job: VideoJob) -> int:
        return job.steps

    def frames(self, job: VideoJob, seed: int, image: Any, on_step: OnStep) -> Iterator[np.ndarray]:
        width, height = self.size(job)
        count = job.num_frames
        draw = self._image_frames if image is not None else self._title_frames
        done = 0
        for index, frame in enumerate(draw(job, seed, image, width, height, count)):
            step = (index + 1) * job.steps // count
            if step > done:
                done = step
                on_step(done, job.steps)
            yield frame

    # --- text only: a title card over a drifting gradient
    def _title_frames(
        self, job: VideoJob, seed: int, image: Any, width: int, height: int, count: int
    ) -> Iterator[np.ndarray]:
        first, second = _palette(seed)
        rng = np.random.default_rng(seed + 1)
        span = width + width // 2
        angle = float(rng.uniform(0.2, 1.2))
        xs = np.arange(span, dtype=np.float32)[None, :] * np.cos(angle)
        ys = np.arange(height, dtype=np.float32)[:, None] * np.sin(angle)
        ramp = (xs + ys) / (span * np.cos(angle) + height * np.sin(angle))
        wave = 0.5 + 0.5 * np.sin(ramp * np.pi * 3.0)
        gradient = first[None, None, :] * wave[..., None] + second[None, None, :] * (1 - wave[..., None])
        gradient = gradient.astype(np.uint8)
        size = max(12, min(height // 9, width // 16))
        rgb, alpha = _text_layer(job.prompt, int(width * 0.86), int(height * 0.7), size)
        overlay = _Overlay(rgb, alpha)
        th, tw = alpha.shape
        left = (width - tw) // 2
        fade = max(1, int(FADE_SECONDS * job.fps))
        for index in range(count):
            t = index / max(1, count - 1)
            offset = int(t * (span - width))
            frame = gradient[:, offset : offset + width].copy()
            top = max(0, min(height - th, (height - th) // 2 + int((0.5 - t) * size)))
            strength = min(1.0, (index + 1) / fade, (count - index) / fade + 0.35)
            overlay.blend(frame[top : top + th, left : left + tw], strength)
            yield frame

    # --- image: a slow pan and zoom (Ken Burns) with the prompt as a caption
    def _image_frames(
        self, job: VideoJob, seed: int, image: Any, width: int, height: int, count: int
    ) -> Iterator[np.ndarray]:
        from PIL import Image

        source = image.convert("RGB")
        scale = max(width / source.width, height / source.height) * (1 + ZOOM)
        canvas = source.resize(
            (max(width, round(source.width * scale)), max(height, round(source.height * scale)))
        )
        rng = np.random.default_rng(seed)
        direction = rng.choice([-1.0, 1.0], size=2)
        size = max(10, height // 22)
        rgb, alpha = _text_layer(job.prompt, int(width * 0.9), size * 3, size)
        overlay = _Overlay(rgb, alpha)
        th, tw = alpha.shape
        left, top = (width - tw) // 2, height - th - size // 2
        cw, ch = canvas.size
        for index in range(count):
            t = index / max(1, count - 1)
            zoom = 1 + ZOOM * t  # the window shrinks from (1+ZOOM)x the frame to 1:1 pixels
            box_w, box_h = width * (1 + ZOOM) / zoom, height * (1 + ZOOM) / zoom
            cx = cw / 2 + direction[0] * (cw - box_w) / 2 * (t - 0.5)
            cy = ch / 2 + direction[1] * (ch - box_h) / 2 * (t - 0.5)
            box_w, box_h = min(box_w, cw), min(box_h, ch)
            left_edge = min(max(0.0, cx - box_w / 2), cw - box_w)
            top_edge = min(max(0.0, cy - box_h / 2), ch - box_h)
            crop = (left_edge, top_edge, left_edge + box_w, top_edge + box_h)
            frame = np.array(canvas.resize((width, height), Image.Resampling.BILINEAR, box=crop))
            if top > 0:
                overlay.blend(frame[top : top + th, left : left + tw], 0.9)
            yield frame
