"""The `wan` engine: Wan 2.2 TI2V-5B through diffusers (WanPipeline; WanImageToVideoPipeline.from_pipe for
image-to-video on the same loaded modules). `tiny` runs this same code on a random tiny pipeline.

Weights: `Wan2.2-TI2V-5B-Diffusers` from $MODEL_DIR (baked into the image), else from $MODEL_URI (an
s3:// model.tar.gz or a prefix) unpacked into $MODEL_DIR at start. Never a hub download: HF_HUB_OFFLINE is
forced on. Precision: transformer and text encoder bf16, VAE fp32 with tiling; WAN_CPU_OFFLOAD=1 (default on
GPUs under 40 GB, e.g. the A10G's 24 GB) uses model CPU offload.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from storyflow_video import s3io
from storyflow_video.encode import to_uint8
from storyflow_video.engines import OnStep
from storyflow_video.errors import EngineUnavailable, ModelNotFound, OutOfMemory
from storyflow_video.model_layout import MODEL_INDEX, missing_files  # shared with `storyflow models`
from storyflow_video.request import VideoJob, wan_size

MODEL_DIR_ENV = "MODEL_DIR"
MODEL_URI_ENV = "MODEL_URI"
OFFLOAD_ENV = "WAN_CPU_OFFLOAD"
DEFAULT_MODEL_DIR = "/opt/models/Wan2.2-TI2V-5B-Diffusers"
OFFLOAD_BELOW_GIB = 40


def _imports() -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the hub, whatever a config says
    try:
        import diffusers
        import torch
    except ImportError as error:
        raise EngineUnavailable(f"the wan engine needs torch and diffusers: {error}") from error
    return torch, diffusers


def fetch_model(uri: str, into: Path) -> Path:
    """Unpack an s3:// model.tar.gz (or copy an s3:// prefix) into `into`; returns the model folder."""
    bucket, key = s3io.split_uri(uri)
    into.mkdir(parents=True, exist_ok=True)
    s3 = s3io.s3_client()
    if key.endswith((".tar.gz", ".tgz", ".tar")):
        archive = into / "model.tar.gz"
        s3io.download(s3, bucket, key, archive)
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
        archive.unlink()
    else:
        s3io.download_prefix(s3, bucket, key.rstrip("/") + "/", into)
    found = [p.parent for p in into.rglob(MODEL_INDEX)]
    if not found:
        raise ModelNotFound(f"{uri} holds no model_index.json (a diffusers model folder)")
    return min(found, key=lambda p: len(p.parts))


class WanEngine:
    encode_preset = "medium"  # seconds next to minutes of diffusion

    def __init__(self, pipe: Any, name: str = "wan", device: str = "cpu") -> None:
        self.pipe = pipe
        self.name = name
        self.device = device
        self._i2v: Any = None

    # --- loading
    @classmethod
    def tiny(cls) -> WanEngine:
        _imports()
        from storyflow_video.engines.tiny import build_pipeline

        return cls(build_pipeline(), name="tiny", device="cpu")

    @classmethod
    def from_environment(cls) -> WanEngine:
        model_dir = Path(os.environ.get(MODEL_DIR_ENV) or DEFAULT_MODEL_DIR)
        if not (model_dir / MODEL_INDEX).is_file():
            uri = os.environ.get(MODEL_URI_ENV, "").strip()
            if not uri:
                raise ModelNotFound(
                    f"no Wan2.2-TI2V-5B-Diffusers weights: {model_dir}/model_index.json is missing and "
                    f"{MODEL_URI_ENV} is not set"
                )
            model_dir = fetch_model(uri, model_dir)
        missing = missing_files(model_dir)
        if missing:  # the layout `storyflow models check video` validates (storyflow_video.model_layout)
            raise ModelNotFound(f"the Wan2.2-TI2V-5B-Diffusers folder {model_dir} lacks {', '.join(missing)}")
        return cls.load(model_dir)

    @classmethod
    def load(cls, model_dir: Path, offload: bool | None = None) -> WanEngine:
        torch, diffusers = _imports()
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        vae = diffusers.AutoencoderKLWan.from_pretrained(
            model_dir, subfolder="vae", torch_dtype=torch.float32, local_files_only=True
        )
        pipe = diffusers.WanPipeline.from_pretrained(
            model_dir, vae=vae, torch_dtype=dtype, local_files_only=True
        )
        pipe.vae.enable_tiling()
        if offload is None:
            setting = os.environ.get(OFFLOAD_ENV, "").strip()
            if setting:
                offload = setting not in ("0", "false", "no")
            else:
                total = torch.cuda.get_device_properties(0).total_memory if device == "cuda" else 0
                offload = device == "cuda" and total < OFFLOAD_BELOW_GIB * 1024**3
        if offload:
            pipe.enable_model_cpu_offload()
        else:
            pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe, name="wan", device=device)

    # --- rendering
    def size(self, job: VideoJob) -> tuple[int, int]:
        return wan_size(job.width, job.height)

    def steps(self, job: VideoJob) -> int:
        return job.steps

    def _image_pipeline(self) -> Any:
        if self._i2v is None:
            _, diffusers = _imports()
            self._i2v = diffusers.WanImageToVideoPipeline.from_pipe(self.pipe)
            self._i2v.set_progress_bar_config(disable=True)
        return self._i2v

    def frames(self, job: VideoJob, seed: int, image: Any, on_step: OnStep) -> Iterator[np.ndarray]:
        torch, _ = _imports()
        width, height = self.size(job)
        total = job.steps

        def callback(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            on_step(step + 1, total)
            return kwargs

        arguments: dict[str, Any] = {
            "prompt": job.prompt,
            "negative_prompt": job.negative_prompt or None,
            "height": height,
            "width": width,
            "num_frames": job.num_frames,
            "num_inference_steps": job.steps,
            "guidance_scale": job.guidance,
            "generator": torch.Generator(device="cpu").manual_seed(seed),
            "output_type": "np",
            "callback_on_step_end": callback,
        }
        pipe = self.pipe
        if image is not None:
            pipe = self._image_pipeline()
            arguments["image"] = image.convert("RGB").resize((width, height))
        try:
            with torch.inference_mode():
                output = pipe(**arguments)
        except torch.cuda.OutOfMemoryError as error:
            raise OutOfMemory(f"CUDA out of memory at {width}x{height}x{job.num_frames}: {error}") from error
        video = to_uint8(np.asarray(output.frames[0]))
        yield from video
