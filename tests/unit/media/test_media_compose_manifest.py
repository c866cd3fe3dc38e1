"""`storyflow-media compose --scenes-uri s3://bucket/key` (the scene list a story's plan writes) and
`--music-uri ""` (no music), in-process against the moto server, on two tiny generated scenes: the result
names its output as `outputs: {"final.mp4": uri}`, and a scene list that cannot be used is a BadManifest
with its error.json, as the CLI's other failures are."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from storyflow_media import cli
from storyflow_media.synth import make_clip, make_tone, make_words

from .media_helpers import read_json, stream_kinds

JOB = "story-20261201-0a1b2c3d4e5f"
SCENES_KEY = f"jobs/{JOB}/plan/r0-compose.json"
NARRATION = (1.0, 1.2)


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Path]]:
    """Two tiny scenes: a 1 s clip each (160x120, no audio), a narration and its word timings."""
    root = tmp_path_factory.mktemp("manifest")
    return [
        {
            "clip_uri": make_clip(
                root / f"clip{i}.mp4", seconds=1.0, width=160, height=120, audio=False, preset="ultrafast"
            ),
            "narration_uri": make_tone(root / f"narr{i}.wav", seconds, hz=330.0 + 110 * i),
            "words_uri": make_words(root / f"words{i}.json", f"Scene {i} says hello.", seconds),
        }
        for i, seconds in enumerate(NARRATION)
    ]


def upload_scene_list(scene_files: list[dict[str, Path]], bucket: str) -> list[dict[str, str]]:
    """Given the scenes' media in S3 where the children write them, and their list as the plan writes it."""
    s3 = boto3.client("s3")
    listed = []
    for i, files in enumerate(scene_files):
        item = {}
        for name, path in files.items():
            key = f"scenes/{JOB}/{i}/{path.name}"
            s3.upload_file(str(path), bucket, key)
            item[name] = f"s3://{bucket}/{key}"
        listed.append(item)
    put(bucket, SCENES_KEY, json.dumps(listed).encode())
    return listed


def put(bucket: str, key: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def compose(outb: str, *args: str) -> int:
    return cli.main(
        [
            *("compose", "--job-id", JOB, "--output-bucket", outb),
            *("--aspect", "1:1", "--short-side", "96", "--crossfade", "0.2"),
            *args,
        ]
    )


@pytest.fixture
def result_bucket(buckets: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Given RESULT_BUCKET set to the output bucket, as on the media task definition."""
    monkeypatch.setenv(cli.RESULT_BUCKET_ENV, buckets[1])
    return buckets


# ---------------------------------------------------------------- a usable scene list
def test_compose_reads_the_scene_list_from_s3_and_names_its_output(
    scene_files: list[dict[str, Path]],
    result_bucket: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    # Given the scenes in S3 and their list at jobs/{job}/plan/r0-compose.json
    _, outb = result_bucket
    upload_scene_list(scene_files, outb)

    # When compose runs with --scenes-uri, and --music-uri "" (the state machine's "no music")
    code = compose(
        outb, "--scenes-uri", f"s3://{outb}/{SCENES_KEY}", "--music-uri", "", "--subtitles", "soft"
    )

    # Then it succeeds with one JSON line naming final.mp4 among its outputs, as result.json says too
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    uri = f"s3://{outb}/jobs/{JOB}/final.mp4"
    assert result["outputs"] == {"final.mp4": uri}
    assert result["output_uri"] == uri and result["key"] == f"jobs/{JOB}/final.mp4"
    assert read_json(outb, f"jobs/{JOB}/steps/compose/result.json") == result
    # ... both scenes composed, with no music, the words as a soft subtitle track
    assert result["scenes"] == 2 and result["music"] is False
    assert (result["width"], result["height"]) == (96, 96)
    assert result["cues"] >= 2
    final = tmp_path / "final.mp4"
    boto3.client("s3").download_file(outb, f"jobs/{JOB}/final.mp4", str(final))
    assert sorted(stream_kinds(final)) == ["audio", "subtitle", "video"]


def test_compose_with_music_from_s3_mixes_it(
    scene_files: list[dict[str, Path]],
    result_bucket: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    inb, outb = result_bucket
    upload_scene_list(scene_files, outb)
    boto3.client("s3").upload_file(
        str(make_tone(tmp_path / "music.wav", 0.8, hz=220.0)), inb, "music/theme.wav"
    )
    code = compose(
        outb,
        *("--scenes-uri", f"s3://{outb}/{SCENES_KEY}", "--music-uri", f"s3://{inb}/music/theme.wav"),
        *("--subtitles", "none"),
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["music"] is True


def test_compose_with_the_list_inline_has_the_same_outputs(
    scene_files: list[dict[str, Path]], result_bucket: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    inb, outb = result_bucket
    listed = upload_scene_list(scene_files, inb)
    code = compose(
        outb, "--scenes", json.dumps(listed), "--subtitles", "none", "--output-key", f"jobs/{JOB}/x.mp4"
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["outputs"] == {"final.mp4": f"s3://{outb}/jobs/{JOB}/x.mp4"} and result["music"] is False


# ---------------------------------------------------------------- an unusable scene list
@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "Expecting"),
        (b"\x80\x81\x82", ""),
        (b"[]", "non-empty JSON array"),
        (b'{"clip_uri": "s3://b/c.mp4", "narration_uri": "s3://b/n.wav"}', "non-empty JSON array"),
        (b'[{"clip_uri": "s3://b/c.mp4"}]', "scene 0: needs clip_uri and narration_uri"),
        (b'[{"clip_uri": "s3://b/c.mp4", "narration_uri": "s3://b/n.wav"}, "x"]', "scene 1"),
        (b'[{"clip_uri": "https://b/c.mp4", "narration_uri": "s3://b/n.wav"}]', "not an s3://bucket/key URI"),
    ],
    ids=["malformed", "not-utf8", "empty", "an-object", "no-narration", "not-an-object", "not-s3"],
)
def test_an_unusable_scene_list_is_a_bad_manifest_with_error_json(
    result_bucket: tuple[str, str], capsys: pytest.CaptureFixture[str], body: bytes, says: str
) -> None:
    # Given a scene list that is not JSON, or not a usable list of scenes
    _, outb = result_bucket
    put(outb, SCENES_KEY, body)
    uri = f"s3://{outb}/{SCENES_KEY}"

    # When compose runs on it
    code = compose(outb, "--scenes-uri", uri)

    # Then it exits BadManifest's code with one line naming the list, and leaves the same in error.json
    (line,) = capsys.readouterr().err.splitlines()
    assert code == 1
    assert line.startswith(f"error: BadManifest: {uri}: ") and says in line, line
    error = read_json(outb, f"jobs/{JOB}/steps/compose/error.json")
    assert error["error"] == "BadManifest" and error["exit_code"] == 1 and error["step"] == "compose"
    assert line == f"error: BadManifest: {error['message']}"
    # ... and writes no video
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=outb, Prefix=f"jobs/{JOB}/final.mp4")


def test_a_missing_scene_list_is_a_missing_object(
    result_bucket: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, outb = result_bucket
    uri = f"s3://{outb}/{SCENES_KEY}"
    code = compose(outb, "--scenes-uri", uri)
    (line,) = capsys.readouterr().err.splitlines()
    assert code == 1 and line.startswith("error: MissingObject: ") and uri in line
    assert read_json(outb, f"jobs/{JOB}/steps/compose/error.json")["error"] == "MissingObject"


@pytest.mark.parametrize(
    "args",
    [
        [],  # neither --scenes nor --scenes-uri
        ["--scenes", '[{"clip_uri": "s3://b/c", "narration_uri": "s3://b/n"}]', "--scenes-uri", "s3://b/k"],
        ["--scenes-uri", "https://b/k.json"],
        ["--scenes-uri", "s3://bucket-only"],
        ["--scenes-uri", "s3://b/k", "--music-uri", "not-a-uri"],
    ],
    ids=["neither", "both", "not-s3", "no-key", "bad-music"],
)
def test_bad_scene_or_music_options_are_usage_errors(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compose", "--job-id", JOB, "--output-bucket", "b", *args])
    assert exit_.value.code == 2
    assert "usage:" in capsys.readouterr().err
