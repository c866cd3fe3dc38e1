"""Reading back what the video container wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np


def probe(path: Path) -> dict[str, Any]:
    """Codec, size, pixel format, rate and the decoded frame count of an MP4."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        return {
            "codec": stream.codec_context.name,
            "width": stream.width,
            "height": stream.height,
            "pix_fmt": stream.format.name,
            "fps": float(stream.average_rate),
            "frames": len(frames),
            "first": frames[0],
            "last": frames[-1],
        }


def moov_before_mdat(path: Path) -> bool:
    """faststart: the moov box comes before the media data."""
    data = path.read_bytes()
    return 0 <= data.find(b"moov") < data.find(b"mdat")


def differs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float32) - b.astype(np.float32))))
