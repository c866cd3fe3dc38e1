"""``stereocrafter``: the production GPU engine (StereoCrafter, Tencent ARC).

Pipeline per segment: DepthCrafter video depth (temporally consistent, one pass over the clip) ->
forward splatting of the disparity into the right eye (shared with ``depthwarp``:
:func:`storyflow_stereo.warp.render_right_eye`) -> StereoCrafter's SVD-based video inpainting of the
disoccluded holes, in overlapping temporal chunks -> side-by-side with the source as the left eye.

Weights come only from ``MODEL_DIR`` (baked into the image) or ``/opt/ml/model`` (where SageMaker
unpacks the model artifact), a ``weights/`` folder inside either accepted too, never from a hub::

    MODEL_DIR/
      stable-video-diffusion-img2vid-xt-1-1/   (model_index.json, feature_extractor/, image_encoder/,
                                               scheduler/, vae/; fp16 variant)
      DepthCrafter/                            (config.json + unet weights)
      StereoCrafter/unet_diffusers/            (config.json + unet weights)

The model code (``pipelines/`` and ``dependency/DepthCrafter``) comes from a StereoCrafter checkout at
``STEREOCRAFTER_SRC`` (default ``/opt/StereoCrafter``, baked by the GPU Dockerfile). torch, diffusers and
that code are imported inside :meth:`StereoCrafterEngine.load` only: this module imports anywhere.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from storyflow_stereo.engines.base import Engine, RenderResult
from storyflow_stereo.errors import ModelNotAvailable

# The layout lives there (stdlib only): `storyflow models check|pack stereo` checks the same lists.
from storyflow_stereo.model_layout import (
    DEPTHCRAFTER_DIR,
    REQUIRED_FILES,
    REQUIRED_WEIGHT_DIRS,
    STEREOCRAFTER_UNET_DIR,
    SVD_DIR,
    missing_model_files,
    resolve_model_dir,
)
from storyflow_stereo.params import StereoParams
from storyflow_stereo.video import VideoReader, VideoWriter
from storyflow_stereo.warp import output_size, pack_side_by_side, render_right_eye

__all__ = ["REQUIRED_FILES", "REQUIRED_WEIGHT_DIRS", "StereoCrafterEngine", "missing_model_files"]

log = logging.getLogger(__name__)

SAGEMAKER_MODEL_DIR = "/opt/ml/model"
CODE_MODULES = (
    "pipelines.stereo_video_inpainting",
    "dependency.DepthCrafter.depthcrafter.depth_crafter_ppl",
    "dependency.DepthCrafter.depthcrafter.unet",
)


def temporal_windows(n: int, chunk: int, overlap: int) -> list[tuple[int, int, int]]:
    """Inpainting windows ``(start, end, carried)`` covering frames ``0..n-1``.

    Each window after the first starts ``carried`` frames before the end of what is already generated;
    those frames are re-fed from the previous output (temporal continuity) and dropped from the new one,
    so concatenating ``output[carried:]`` of every window yields exactly ``n`` frames.
    """
    if n <= 0:
        return []
    if not 0 <= overlap < chunk:
        raise ValueError("need 0 <= overlap < chunk")
    if n <= chunk:
        return [(0, n, 0)]
    windows = [(0, chunk, 0)]
    produced = chunk
    while produced < n:
        start = max(0, min(produced - overlap, n - chunk))
        windows.append((start, start + chunk, produced - start))
        produced = start + chunk
    return windows


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def _rgb(image: np.ndarray) -> np.ndarray:
    """BGR <-> RGB as a contiguous array (OpenCV and torch both want positive strides)."""
    return np.ascontiguousarray(image[..., ::-1])


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


class StereoCrafterEngine(Engine):
    name = "stereocrafter"

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, code_dir: str | None = None) -> None:
        self.model_dir = Path(model_dir or os.environ.get("MODEL_DIR") or SAGEMAKER_MODEL_DIR)
        self.code_dir = Path(code_dir or os.environ.get("STEREOCRAFTER_SRC") or "/opt/StereoCrafter")
        self.depth_steps = _env_int("STEREOCRAFTER_DEPTH_STEPS", 5)
        self.depth_window = _env_int("STEREOCRAFTER_DEPTH_WINDOW", 110)
        self.depth_overlap = _env_int("STEREOCRAFTER_DEPTH_OVERLAP", 25)
        self.depth_max_res = _env_int("STEREOCRAFTER_DEPTH_MAX_RES", 1024)
        self.inpaint_steps = _env_int("STEREOCRAFTER_INPAINT_STEPS", 8)
        self.inpaint_chunk = _env_int("STEREOCRAFTER_CHUNK", 23)
        self.inpaint_overlap = _env_int("STEREOCRAFTER_OVERLAP", 3)
        self.inpaint_max_res = _env_int("STEREOCRAFTER_INPAINT_MAX_RES", 1024)
        self._torch: Any = None
        self._depth_pipe: Any = None
        self._inpaint_pipe: Any = None
        self._tensor2vid: Any = None

    # -- loading -----------------------------------------------------------------------------------

    def load(self) -> None:
        roots = [self.model_dir]
        if self.model_dir != Path(SAGEMAKER_MODEL_DIR) and Path(SAGEMAKER_MODEL_DIR).is_dir():
            roots.append(Path(SAGEMAKER_MODEL_DIR))
        weights, missing = resolve_model_dir(*roots)
        problems = []
        if missing:
            searched = ", ".join(str(r) for r in roots)
            problems.append(f"missing model files (searched MODEL_DIR {searched}): {', '.join(missing)}")
        if not self.code_dir.is_dir():
            problems.append(f"StereoCrafter code not found at STEREOCRAFTER_SRC={self.code_dir}")
        try:
            torch = importlib.import_module("torch")
        except ImportError as exc:
            torch = None
            problems.append(
                f"torch is not installed ({exc}); use the GPU image (containers/stereo/Dockerfile)"
            )
        if torch is not None and not torch.cuda.is_available():
            problems.append("torch sees no CUDA device; the stereocrafter engine needs a GPU")
        if problems:
            raise ModelNotAvailable("stereocrafter cannot load: " + "; ".join(problems))
        assert torch is not None
        if str(self.code_dir) not in sys.path:
            sys.path.insert(0, str(self.code_dir))
        try:
            modules = [importlib.import_module(name) for name in CODE_MODULES]
            diffusers = importlib.import_module("diffusers")
            transformers = importlib.import_module("transformers")
        except ImportError as exc:
            raise ModelNotAvailable(
                f"stereocrafter model code or its dependencies failed to import: {exc}"
            ) from exc
        inpainting, depth_ppl, depth_unet = modules
        self._torch = torch
        fp16 = torch.float16
        local = {"local_files_only": True}  # never reach a hub
        svd = str(weights / SVD_DIR)
        log.info("stereocrafter: loading weights from %s", weights)
        unet = depth_unet.DiffusersUNetSpatioTemporalConditionModelDepthCrafter.from_pretrained(
            str(weights / DEPTHCRAFTER_DIR), low_cpu_mem_usage=True, torch_dtype=fp16, **local
        )
        depth_pipe = depth_ppl.DepthCrafterPipeline.from_pretrained(
            svd, unet=unet, torch_dtype=fp16, variant="fp16", **local
        )
        depth_pipe.to("cuda")
        image_encoder = transformers.CLIPVisionModelWithProjection.from_pretrained(
            svd, subfolder="image_encoder", variant="fp16", torch_dtype=fp16, **local
        )
        vae = diffusers.AutoencoderKLTemporalDecoder.from_pretrained(
            svd, subfolder="vae", variant="fp16", torch_dtype=fp16, **local
        )
        inpaint_unet = diffusers.UNetSpatioTemporalConditionModel.from_pretrained(
            str(weights / STEREOCRAFTER_UNET_DIR), low_cpu_mem_usage=True, torch_dtype=fp16, **local
        )
        for module in (image_encoder, vae, inpaint_unet):
            module.requires_grad_(False)
        inpaint_pipe = inpainting.StableVideoDiffusionInpaintingPipeline.from_pretrained(
            svd, image_encoder=image_encoder, vae=vae, unet=inpaint_unet, torch_dtype=fp16, **local
        )
        inpaint_pipe.to("cuda")
        for pipe in (depth_pipe, inpaint_pipe):
            try:
                pipe.enable_xformers_memory_efficient_attention()
            except Exception as exc:  # optional speed-up; the model works without it
                log.info("stereocrafter: xformers not enabled: %s", exc)
        self._depth_pipe = depth_pipe
        self._inpaint_pipe = inpaint_pipe
        self._tensor2vid = inpainting.tensor2vid

    # -- rendering ---------------------------------------------------------------------------------

    def render_file(self, src: Path, dst: Path, params: StereoParams) -> RenderResult:
        if self._inpaint_pipe is None:
            raise ModelNotAvailable("stereocrafter is not loaded")
        with VideoReader(src) as reader:
            info = reader.info
            decoded = list(reader.frames("bgr"))
        frames = np.stack([f.bgr for f in decoded if f.bgr is not None])  # (T, H, W, 3) BGR uint8
        nearness = self.estimate_depth(frames)
        warped = np.empty_like(frames)
        holes = np.empty(frames.shape[:3], dtype=bool)
        for i, frame in enumerate(frames):
            warped[i], holes[i] = render_right_eye(frame, nearness[i], params.baseline, params.convergence)
        right = self.inpaint(warped, holes)
        out_w, out_h = output_size(info.width, info.height, params.layout)
        with VideoWriter(dst, out_w, out_h, info.rate, info.time_base) as writer:
            for i, frame in enumerate(decoded):
                writer.write(pack_side_by_side(frames[i], right[i], params.layout), frame.pts)
            count, seconds = writer.frames, writer.duration
        return RenderResult(frames=count, width=out_w, height=out_h, seconds=seconds)

    def estimate_depth(self, frames: np.ndarray) -> np.ndarray:
        """DepthCrafter nearness (T, H, W) in [0, 1] over the whole clip (1 = nearest)."""
        torch = self._torch
        t, height, width = frames.shape[:3]
        scale = min(1.0, self.depth_max_res / max(height, width))
        dh, dw = _round_to(height * scale, 64), _round_to(width * scale, 64)
        rgb = np.stack([cv2.resize(_rgb(f), (dw, dh), interpolation=cv2.INTER_AREA) for f in frames])
        with torch.inference_mode():
            res = self._depth_pipe(
                rgb.astype(np.float32) / 255.0,
                height=dh,
                width=dw,
                output_type="np",
                guidance_scale=1.2,
                num_inference_steps=self.depth_steps,
                window_size=min(self.depth_window, t),
                overlap=min(self.depth_overlap, max(0, t - 1)),
            ).frames[0]
        depth = np.asarray(res, dtype=np.float32).mean(axis=-1)
        lo, hi = float(depth.min()), float(depth.max())
        depth = (depth - lo) / max(hi - lo, 1e-6)
        return np.stack([cv2.resize(d, (width, height), interpolation=cv2.INTER_LINEAR) for d in depth])

    def inpaint(self, warped: np.ndarray, holes: np.ndarray) -> np.ndarray:
        """Fill the holes of the warped right-eye frames (T, H, W, 3) BGR uint8 with StereoCrafter."""
        torch = self._torch
        t, height, width = holes.shape
        scale = min(1.0, self.inpaint_max_res / max(height, width))
        ih, iw = _round_to(height * scale, 128), _round_to(width * scale, 128)
        rgb = np.stack([cv2.resize(_rgb(f), (iw, ih), interpolation=cv2.INTER_AREA) for f in warped])
        masks = np.stack(
            [cv2.resize(h.view(np.uint8), (iw, ih), interpolation=cv2.INTER_NEAREST) for h in holes]
        )
        frames_t = torch.from_numpy(rgb).permute(0, 3, 1, 2).float().div_(255.0)
        masks_t = torch.from_numpy(masks).unsqueeze(1).float()
        outputs: list[Any] = []
        previous: Any = None
        for start, end, carried in temporal_windows(t, self.inpaint_chunk, self.inpaint_overlap):
            cond = frames_t[start:end].clone()
            if carried and previous is not None:
                cond[:carried] = previous[-carried:]
            with torch.inference_mode():
                latents = self._inpaint_pipe(
                    frames=cond,
                    frames_mask=masks_t[start:end],
                    height=ih,
                    width=iw,
                    num_frames=end - start,
                    output_type="latent",
                    min_guidance_scale=1.01,
                    max_guidance_scale=1.01,
                    decode_chunk_size=8,
                    fps=7,
                    motion_bucket_id=127,
                    noise_aug_strength=0.0,
                    num_inference_steps=self.inpaint_steps,
                ).frames[0]
                video = self._inpaint_pipe.decode_latents(
                    latents.unsqueeze(0), num_frames=end - start, decode_chunk_size=2
                )
            chunk = torch.from_numpy(self._tensor2vid(video, self._inpaint_pipe.image_processor, "np")[0])
            chunk = chunk.permute(0, 3, 1, 2).float()  # (n, 3, ih, iw) in [0, 1]
            outputs.append(chunk[carried:])
            previous = chunk
        filled = torch.cat(outputs).clamp_(0, 1).mul_(255).byte().permute(0, 2, 3, 1).numpy()
        out = np.empty_like(warped)
        for i in range(t):
            inpainted = cv2.resize(_rgb(filled[i]), (width, height), interpolation=cv2.INTER_CUBIC)
            # Keep the sharp warped pixels; blend the generated ones in over a feathered hole mask.
            hole = cv2.dilate(holes[i].view(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32)
            mask: np.ndarray = cv2.GaussianBlur(hole, (0, 0), 2.0)[..., None]
            out[i] = (warped[i] * (1.0 - mask) + inpainted * mask).astype(np.uint8)
        return out
