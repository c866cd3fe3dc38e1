"""`storyflow-media compose` on small generated media: 2 scenes of 2-3 s narration each.

Given clips shorter and longer than their narration, When composed, Then the video lasts the narrations
(minus nothing: crossfades overlap the pictures, never the speech), has audio, the asked aspect ratio, and
subtitles (a soft mov_text track, or burned: pixels differ where the text is).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import av
import boto3
import numpy as np
import pytest
from storyflow_media import compose as c
from storyflow_media.synth import make_clip, make_tone, make_words

from .media_helpers import audio_seconds, media, read_json, stream_kinds

NARRATION = (2.0, 2.6)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[c.Scene]:
    root = tmp_path_factory.mktemp("compose")
    fast = "ultrafast"
    return [
        c.Scene(  # clip shorter than its narration: looped/slowed, never cut short
            make_clip(root / "clip0.mp4", seconds=1.0, audio=False, preset=fast),
            make_tone(root / "narr0.wav", NARRATION[0]),
            make_words(root / "words0.json", "Once upon a time, there was a fox.", NARRATION[0]),
        ),
        c.Scene(  # clip longer than its narration: trimmed
            make_clip(root / "clip1.mp4", seconds=4.0, width=240, height=320, audio=False, preset=fast),
            make_tone(root / "narr1.wav", NARRATION[1], hz=440.0),
            make_words(root / "words1.json", "It ran far away. The end!", NARRATION[1]),
        ),
    ]


def video_info(path: Path) -> tuple[int, int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        return stream.width, stream.height, float(stream.duration * stream.time_base)


def middle_frame(path: Path, at: float) -> np.ndarray:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= at:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"no frame at {at}s in {path}")


def test_output_size_per_aspect() -> None:
    assert c.output_size("16:9") == (1280, 720)
    assert c.output_size("9:16") == (720, 1280)
    assert c.output_size("1:1", 360) == (360, 360)
    with pytest.raises(c.BadScene, match="aspect"):
        c.output_size("4:3")


def test_cues_break_at_sentences_and_never_overlap(tmp_path: Path) -> None:
    got = c.cues(
        c.read_words(make_words(tmp_path / "w.json", "One two. Three four five six seven eight nine.", 3), 10)
    )
    assert [t for _, _, t in got] == ["One two.", "Three four five six seven eight nine."]
    assert got[0][0] == pytest.approx(10.0)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(got))


def test_ass_canvas_is_the_output_size(tmp_path: Path) -> None:
    c.write_ass(tmp_path / "s.ass", [(0.0, 1.0, "hello")], 720, 1280)
    text = (tmp_path / "s.ass").read_text(encoding="utf-8")
    assert "PlayResX: 720" in text and "PlayResY: 1280" in text and c.FONT_NAME in text


@pytest.mark.parametrize("aspect", ["16:9", "9:16", "1:1"])
def test_compose_soft_subtitles_duration_audio_aspect(
    scenes: list[c.Scene], tmp_path: Path, aspect: str
) -> None:
    out = tmp_path / "story.mp4"
    result = c.compose(scenes, out, aspect=aspect, short_side=180, subtitles="soft", crossfade=0.5)
    width, height = c.output_size(aspect, 180)
    got_w, got_h, seconds = video_info(out)
    assert (got_w, got_h) == (width, height)
    assert seconds >= sum(NARRATION) - 0.5 - 0.05
    audio = audio_seconds(out)
    assert audio is not None and audio >= sum(NARRATION) - 0.05
    assert stream_kinds(out).count("subtitle") == 1
    with av.open(str(out)) as container:
        assert container.streams.subtitles[0].codec_context.name == "mov_text"
    assert result.fits == ["loop", "trim"]
    assert result.offsets == [0.0, NARRATION[0]]
    assert result.cues >= 2


def test_burned_subtitles_change_the_pixels_where_the_text_is(scenes: list[c.Scene], tmp_path: Path) -> None:
    plain, burned = tmp_path / "plain.mp4", tmp_path / "burned.mp4"
    c.compose(scenes, plain, aspect="16:9", short_side=180, subtitles="none")
    result = c.compose(scenes, burned, aspect="16:9", short_side=180, subtitles="burned")
    assert result.subtitles == "burned"
    assert "subtitle" not in stream_kinds(burned)
    a, b = middle_frame(plain, 1.0).astype(int), middle_frame(burned, 1.0).astype(int)
    diff = np.abs(a - b).sum(axis=2)
    bottom, top = diff[int(a.shape[0] * 0.6) :], diff[: int(a.shape[0] * 0.4)]
    assert (bottom > 60).mean() > 0.01, "no text burned into the bottom of the frame"
    assert (bottom > 60).mean() > 5 * (top > 60).mean()


def test_music_is_ducked_under_the_narration(scenes: list[c.Scene], tmp_path: Path) -> None:
    music = make_tone(tmp_path / "music.wav", 1.5, hz=220.0, rate=44_100)
    out = tmp_path / "music.mp4"
    result = c.compose(scenes, out, aspect="1:1", short_side=120, subtitles="both", music=music)
    assert result.music and result.subtitles == "both"
    audio = audio_seconds(out)
    assert audio is not None and audio >= sum(NARRATION) - 0.05
    assert stream_kinds(out).count("subtitle") == 1


def test_bad_words_json_is_a_bad_scene(scenes: list[c.Scene], tmp_path: Path) -> None:
    bad = tmp_path / "words.json"
    bad.write_text('{"nope": 1}', encoding="utf-8")
    with pytest.raises(c.BadScene, match=r"words\.json"):
        c.compose([c.Scene(scenes[0].clip, scenes[0].narration, bad)], tmp_path / "x.mp4")


# --- the `compose` command end to end against moto: S3 in, S3 out, the result protocol ---

JOB = "sy-20261201-0a1b2c3d4e5f"


def upload_scenes(scenes: list[c.Scene], bucket: str) -> str:
    s3 = boto3.client("s3")
    items = []
    for i, scene in enumerate(scenes):
        item = {}
        for name, path in (
            ("clip_uri", scene.clip),
            ("narration_uri", scene.narration),
            ("words_uri", scene.words),
        ):
            assert path is not None
            key = f"scenes/{JOB}/{i}/{path.name}"
            s3.upload_file(str(path), bucket, key)
            item[name] = f"s3://{bucket}/{key}"
        items.append(item)
    return json.dumps(items)


def test_compose_command_writes_the_video_and_result_json(
    scenes: list[c.Scene], cli_env: dict[str, str], buckets: tuple[str, str], tmp_path: Path
) -> None:
    # Given the scenes' clips, narrations and word timings in S3
    inb, outb = buckets
    spec = upload_scenes(scenes, inb)
    # When compose runs with RESULT_BUCKET set, as on the media task definition
    run = media(
        {**cli_env, "RESULT_BUCKET": outb},
        *("compose", "--job-id", JOB, "--output-bucket", outb, "--scenes", spec),
        *("--aspect", "9:16", "--short-side", "160", "--subtitles", "both"),
    )
    # Then it prints its result, leaves the same as steps/compose/result.json, and the video is there
    assert (run.returncode, run.stderr) == (0, "")
    result = json.loads(run.stdout)
    assert read_json(outb, f"jobs/{JOB}/steps/compose/result.json") == result
    assert result["key"] == f"jobs/{JOB}/final.mp4" and (result["width"], result["height"]) == (160, 284)
    final = tmp_path / "final.mp4"
    boto3.client("s3").download_file(outb, result["key"], str(final))
    assert video_info(final)[:2] == (160, 284)
    assert sorted(stream_kinds(final)) == ["audio", "subtitle", "video"]


def test_compose_command_missing_clip_writes_error_json(
    scenes: list[c.Scene], cli_env: dict[str, str], buckets: tuple[str, str]
) -> None:
    # Given a scene whose clip was never uploaded
    inb, outb = buckets
    spec = json.loads(upload_scenes(scenes, inb))
    spec[1]["clip_uri"] = f"s3://{inb}/scenes/{JOB}/missing.mp4"
    # When compose runs
    run = media(
        {**cli_env, "RESULT_BUCKET": outb},
        *("compose", "--job-id", JOB, "--output-bucket", outb, "--scenes", json.dumps(spec)),
    )
    # Then it fails with its one line, and error.json names the missing object
    assert run.returncode != 0
    (line,) = run.stderr.splitlines()
    error = read_json(outb, f"jobs/{JOB}/steps/compose/error.json")
    assert line == f"error: {error['error']}: {error['message']}"
    assert "missing.mp4" in error["message"]


def test_compose_command_rejects_bad_scenes_json(cli_env: dict[str, str]) -> None:
    run = media(
        cli_env, "compose", "--job-id", JOB, "--output-bucket", "b", "--scenes", '[{"clip_uri": "x"}]'
    )
    assert run.returncode == 2
    assert "narration_uri" in run.stderr


def test_one_scene_slowed_and_padded_keeps_its_narration(scenes: list[c.Scene], tmp_path: Path) -> None:
    # Given one scene whose 1.8 s clip is a little shorter than its 2 s narration, and a portrait clip
    clip = make_clip(
        tmp_path / "short.mp4", seconds=1.8, width=240, height=320, audio=False, preset="ultrafast"
    )
    out = tmp_path / "one.mp4"
    # When composed to 16:9 with pad (letterbox) and no subtitles
    result = c.compose([c.Scene(clip, scenes[0].narration)], out, short_side=180, subtitles="none", fit="pad")
    # Then the clip is slowed (not looped), nothing crossfades, the video lasts the narration, bars are black
    assert (result.fits, result.crossfade, result.cues) == (["slow"], 0.0, 0)
    width, height, seconds = video_info(out)
    assert (width, height) == (320, 180) and seconds >= NARRATION[0] - 0.05
    frame = middle_frame(out, 1.0).astype(int)
    assert frame[:, :20].mean() < 20 and frame[:, -20:].mean() < 20, "no black pad at the sides"
    assert "subtitle" not in stream_kinds(out)
