"""``storyflow-backend``: the on-demand backend container's command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from storyflow_backend import __version__
from storyflow_backend.config import ENV_HELP, ConfigError, SupervisorConfig, db_path_from_env, port_from_env

DESCRIPTION = """\
On-demand backend container.

With no command (or `supervise`): restore the newest good version of the SQLite database from the
versioned bucket DB_BUCKET (a corrupt version falls back to the previous one; none → start empty),
run the app (the built-in one, or APP_COMMAND) with DB_PATH and PORT in its environment, upload a
consistent snapshot (SQLite backup API) every SNAPSHOT_SECONDS when the database changed, and on
SIGTERM/SIGINT stop the app, take a final snapshot and exit 0. If the app exits on its own, take a
final snapshot and exit with the app's status.

`app`: run only the built-in app (GET /health/, CRUD on /items/) on DB_PATH, without S3 sync.
"""


def _configure_logging(level_name: str) -> None:
    level = logging.getLevelName(level_name.upper())
    if not isinstance(level, int):
        level = logging.INFO
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # botocore logs credentials lookups etc. at INFO/DEBUG; keep the container log to our lines.
    logging.getLogger("botocore").setLevel(max(level, logging.WARNING))
    logging.getLogger("boto3").setLevel(max(level, logging.WARNING))
    logging.getLogger("urllib3").setLevel(max(level, logging.WARNING))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storyflow-backend",
        description=DESCRIPTION,
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{supervise,app}")
    commands.add_parser(
        "supervise",
        help="restore, run the app, snapshot to S3 (the default)",
        description=DESCRIPTION,
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    app = commands.add_parser(
        "app",
        help="run only the built-in app (no S3 sync)",
        description="Run the built-in app: GET /health/ and CRUD on /items/, stored in the DB at DB_PATH.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    app.add_argument("--port", type=int, default=None, help="port to listen on (default: $PORT or 8000)")
    app.add_argument("--host", default="0.0.0.0", help="address to bind (default: 0.0.0.0)")
    app.add_argument("--db-path", default=None, help="SQLite file (default: $DB_PATH)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    log = logging.getLogger("storyflow-backend")
    try:
        # Imports are lazy: the app child process starts faster without boto3.
        if args.command == "app":
            from storyflow_backend.app import serve

            port = args.port if args.port is not None else port_from_env(os.environ)
            db_path = Path(args.db_path) if args.db_path else db_path_from_env(os.environ)
            try:
                return serve(db_path, port, args.host)
            except OSError as exc:
                log.error("cannot serve on %s:%d: %s", args.host, port, exc)
                return 1

        from storyflow_backend.supervisor import Supervisor

        config = SupervisorConfig.from_env(os.environ)
        return Supervisor(config).run()
    except ConfigError as exc:
        print(f"storyflow-backend: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
