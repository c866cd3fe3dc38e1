"""Compose benchmark (issue 11): `storyflow-media compose` on a 3-scene, 30 s, 720p story, as a ratio to a
plain ffmpeg concat of the same clips (stream copy, and a libx264 re-encode at the same preset).

The story: three 10 s 1280x720 24 fps clips, three 10 s narrations (a tone) with word timings, 0.5 s
crossfades, loudnorm, burned and soft subtitles; with and without ducked music.

    .venv/bin/python bench/compose.py [--seconds 10] [--short-side 720]

Prints a table; writes bench/results/compose.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "containers" / "media"))

from storyflow_media import compose as c  # noqa: E402
from storyflow_media.synth import make_clip, make_tone, make_words  # noqa: E402

TEXT = "Once upon a time a small fox looked up at the sky and dreamed of flying over the hills."


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per scene (default 10: a 30 s story)")
    parser.add_argument("--short-side", type=int, default=720)
    args = parser.parse_args()
    width, height = c.output_size("16:9", args.short_side)
    with tempfile.TemporaryDirectory(prefix="bench-compose-") as tmp:
        root = Path(tmp)
        scenes = [
            c.Scene(
                make_clip(
                    root / f"clip{i}.mp4", seconds=args.seconds, width=width, height=height, audio=False
                ),
                make_tone(root / f"narr{i}.wav", args.seconds, 220.0 + 110 * i, rate=24_000),
                make_words(root / f"words{i}.json", TEXT, args.seconds),
            )
            for i in range(3)
        ]
        music = make_tone(root / "music.wav", 7.0, 110.0, rate=24_000)
        listing = root / "list.txt"
        listing.write_text("".join(f"file '{s.clip}'\n" for s in scenes), encoding="utf-8")
        ffmpeg = [c.ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
        concat = [*ffmpeg, "-f", "concat", "-safe", "0", "-i", str(listing)]
        rows = {
            "concat (stream copy)": timed(
                lambda: subprocess.run([*concat, "-c", "copy", str(root / "copy.mp4")], check=True)
            ),
            "concat (libx264 veryfast)": timed(
                lambda: subprocess.run(
                    [*concat, "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", str(root / "x264.mp4")],
                    check=True,
                )
            ),
            "compose (burned + soft)": timed(
                lambda: c.compose(scenes, root / "story.mp4", short_side=args.short_side, subtitles="both")
            ),
            "compose (burned + soft + music)": timed(
                lambda: c.compose(
                    scenes, root / "music.mp4", short_side=args.short_side, subtitles="both", music=music
                )
            ),
        }
    reencode = rows["concat (libx264 veryfast)"]
    copy = rows["concat (stream copy)"]
    print(f"\ncompose: 3 scenes x {args.seconds:g} s, {width}x{height}, {os.cpu_count()} CPUs")
    print(f"{'run':36} {'seconds':>8} {'/ copy':>8} {'/ x264':>8}")
    for name, seconds in rows.items():
        print(f"{name:36} {seconds:8.2f} {seconds / copy:8.1f} {seconds / reencode:8.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "scenes": 3,
        "seconds_per_scene": args.seconds,
        "width": width,
        "height": height,
        "cpus": os.cpu_count(),
        "runs": {name: round(seconds, 3) for name, seconds in rows.items()},
        "ratio_to_concat_copy": round(rows["compose (burned + soft)"] / copy, 2),
        "ratio_to_concat_reencode": round(rows["compose (burned + soft)"] / reencode, 2),
    }
    (RESULTS / "compose.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
