"""``storyflow-stereo``: serve the SageMaker inference API, or render a local file."""

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

from storyflow_stereo.engines import DEFAULT_ENGINE, ENGINE_NAMES, create_engine
from storyflow_stereo.params import BASELINE_MAX, LAYOUTS, StereoParams

log = logging.getLogger("storyflow_stereo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storyflow-stereo",
        description="2D -> side-by-side 3D video: the SageMaker async inference container of storyflow.",
        epilog=(
            f"Engines (env ENGINE, default {DEFAULT_ENGINE}): depthwarp = CPU depth-warp, no weights; "
            "stereocrafter = GPU StereoCrafter, weights from MODEL_DIR (default /opt/ml/model). "
            "Env STEREO_FAIL_INPUT_SUBSTRING makes invocations whose input_uri contains it fail "
            "(chaos tests)."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="serve GET /ping and POST /invocations (what SageMaker runs)",
        description=(
            "Serve the SageMaker inference API. GET /ping answers 200 once the engine is loaded "
            "(503 before); "
            'POST /invocations takes {"input_uri": "s3://..", "output_uri": "s3://..", "params": {"layout": '
            '"full|half", "baseline": 0.03, "convergence": 0.5}}, renders and uploads the side-by-side video '
            'and answers {"output_uri", "frames", "width", "height", "seconds"}. Errors answer 4xx/5xx with '
            '{"error", "cause"}.'
        ),
    )
    serve.add_argument("--host", default="0.0.0.0", help="address to bind (default: 0.0.0.0)")
    serve.add_argument(
        "--port", type=int, default=default_port(), help=f"port to bind (default: {DEFAULT_PORT})"
    )
    serve.add_argument("--engine", choices=ENGINE_NAMES, help="engine (default: env ENGINE or depthwarp)")
    serve.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"), help="default: INFO")

    render = sub.add_parser(
        "render",
        help="render a local video file to a local side-by-side mp4 (no S3, for debugging)",
        description="Render INPUT (any video PyAV reads) to OUTPUT (H.264 mp4, video only) with an engine.",
    )
    render.add_argument("input", type=Path)
    render.add_argument("output", type=Path)
    render.add_argument("--layout", choices=LAYOUTS, default=StereoParams.layout)
    render.add_argument(
        "--baseline",
        type=float,
        default=StereoParams.baseline,
        help=f"max disparity as a fraction of the width, (0, {BASELINE_MAX}] (default: %(default)s)",
    )
    render.add_argument(
        "--convergence",
        type=float,
        default=StereoParams.convergence,
        help="depth 0 (far) .. 1 (near) that sits on the screen plane (default: %(default)s)",
    )
    render.add_argument("--engine", choices=ENGINE_NAMES, help="engine (default: env ENGINE or depthwarp)")
    render.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(str(args.log_level))  # one JSON object per line on stderr
    try:
        if args.command == "serve":
            return serve(args.host, args.port, args.engine)
        return render(args)
    except ServingError as exc:
        print(f"error: {exc.error}: {exc}", file=sys.stderr)
        return 2


def serve(host: str, port: int, engine_name: str | None = None) -> int:
    """The SageMaker contract (``/ping``, ``/invocations``, SIGTERM drain) is the serving library's."""
    from storyflow_serving.http import serve as serve_http
    from storyflow_serving.service import Host

    from storyflow_stereo.service import READY_WAIT_ENV, StereoService

    service = StereoService(create_engine(engine_name))
    return serve_http(
        Host(service, ready_wait_env=READY_WAIT_ENV),
        host,
        port,
        banner=f"storyflow-stereo serving engine {service.name} on {{host}}:{{port}}",
    )


def render(args: argparse.Namespace) -> int:
    params = StereoParams.from_dict(
        {"layout": args.layout, "baseline": args.baseline, "convergence": args.convergence}
    )
    engine = create_engine(args.engine)
    engine.load()
    started = time.monotonic()
    result = engine.render_file(args.input, args.output, params)
    elapsed = time.monotonic() - started
    print(
        json.dumps(
            {
                "output": str(args.output),
                "frames": result.frames,
                "width": result.width,
                "height": result.height,
                "seconds": result.seconds,
                "render_seconds": round(elapsed, 3),
                "fps": round(result.frames / elapsed, 2) if elapsed > 0 else None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
