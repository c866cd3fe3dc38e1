"""``storyflow-tts``: serve the SageMaker inference API, or speak a local text file."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from storyflow_serving import logs
from storyflow_serving.errors import ServingError
from storyflow_serving.http import DEFAULT_PORT, default_port

from storyflow_tts.engines import DEFAULT_ENGINE, ENGINE_NAMES, create_engine
from storyflow_tts.outputs import write_outputs
from storyflow_tts.params import TtsParams, read_text
from storyflow_tts.voices import DEFAULT_VOICE, LANGS, VOICES

log = logging.getLogger("storyflow_tts")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storyflow-tts",
        description="Text to narration with word-aligned subtitles: storyflow's SageMaker async container.",
        epilog=(
            f"Engines (env ENGINE, default {DEFAULT_ENGINE}): espeak = espeak-ng on CPU, no weights; "
            "kokoro = Kokoro-82M, weights and voices from MODEL_DIR (default /opt/ml/model). "
            "Env TTS_FAIL_TEXT_SUBSTRING makes invocations whose text contains it fail (chaos tests)."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="serve GET /ping, GET /healthz and POST /invocations (what SageMaker runs)",
        description=(
            "Serve the SageMaker inference API. GET /ping and GET /healthz answer 200 once the engine is "
            'loaded (503 before); POST /invocations takes {"input_uri": "s3://../request.json" (a JSON '
            'object with "text"), "output_uri": "s3://../tts/JOB/narration.wav", "params": {"voice", '
            '"speed", "lang", "format"}}, writes narration.wav, narration.m4a, narration.srt, narration.vtt '
            "and words.json beside output_uri and answers their URIs. Errors answer 4xx/5xx with "
            '{"error", "cause"}.'
        ),
    )
    serve.add_argument("--host", default="0.0.0.0", help="address to bind (default: 0.0.0.0)")
    serve.add_argument(
        "--port", type=int, default=default_port(), help=f"port to bind (default: {DEFAULT_PORT})"
    )
    serve.add_argument("--engine", choices=ENGINE_NAMES, help="engine (default: env ENGINE or espeak)")
    serve.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"), help="default: INFO")

    speak = sub.add_parser(
        "speak",
        help="speak a local text file into a local folder (no S3, for debugging and benchmarks)",
        description="Speak INPUT (a UTF-8 text file) into OUTPUT_DIR: the five files a job writes.",
    )
    speak.add_argument("input", type=Path)
    speak.add_argument("output_dir", type=Path)
    speak.add_argument("--voice", choices=VOICES, default=DEFAULT_VOICE)
    speak.add_argument("--lang", choices=tuple(LANGS), default=None, help="default: the voice's language")
    speak.add_argument("--speed", type=float, default=1.0, help="0.5-2.0 (default: 1.0)")
    speak.add_argument("--engine", choices=ENGINE_NAMES, help="engine (default: env ENGINE or espeak)")
    speak.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(str(args.log_level))  # one JSON object per line on stderr
    try:
        if args.command == "serve":
            return serve(args.host, args.port, args.engine)
        return speak(args)
    except ServingError as exc:
        print(f"error: {exc.error}: {exc}", file=sys.stderr)
        return 2


def serve(host: str, port: int, engine_name: str | None = None) -> int:
    """The SageMaker contract (``/ping``, ``/invocations``, SIGTERM drain) is the serving library's;
    ``/healthz`` is this container's own route."""
    from storyflow_serving.http import serve as serve_http
    from storyflow_serving.service import Host

    from storyflow_tts.service import READY_WAIT_ENV, TtsService

    service = TtsService(create_engine(engine_name))
    owner = Host(service, ready_wait_env=READY_WAIT_ENV)
    return serve_http(
        owner,
        host,
        port,
        routes={"/healthz": lambda: service.health(owner)},
        banner=f"storyflow-tts serving engine {service.name} on {{host}}:{{port}}",
    )


def speak(args: argparse.Namespace) -> int:
    params = TtsParams.from_dict({"voice": args.voice, "lang": args.lang, "speed": args.speed})
    text = read_text({"text": args.input.read_text(encoding="utf-8")})
    engine = create_engine(args.engine)
    engine.load()
    started = time.monotonic()
    speech = engine.synthesize(text, params)
    elapsed = time.monotonic() - started
    args.output_dir.mkdir(parents=True, exist_ok=True)
    summary = write_outputs(speech, params, engine.name, args.output_dir)
    rtf = round(summary["seconds"] / elapsed, 2) if elapsed > 0 else None
    print(
        json.dumps(
            {"output_dir": str(args.output_dir), **summary, "synth_seconds": round(elapsed, 3), "rtf": rtf}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
