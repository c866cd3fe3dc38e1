"""The storyflow HTTP client, without typer: find the API, call it (signed, retried), move files, follow jobs.

Everything a script needs (the local cloud's demo uses it too); the typer commands live in `commands`.
"""

from __future__ import annotations

from storyflow_cli.api_client import ApiClient, job_path, sign_request
from storyflow_cli.errors import ApiFailure, CliError
from storyflow_cli.follow import follow
from storyflow_cli.target import LOCAL_STATE, Target, find_local_state, resolve_target, stack_outputs
from storyflow_cli.transfers import MultipartStream, download, output_filename, save_outputs, upload

__all__ = [
    "LOCAL_STATE",
    "ApiClient",
    "ApiFailure",
    "CliError",
    "MultipartStream",
    "Target",
    "download",
    "find_local_state",
    "follow",
    "job_path",
    "output_filename",
    "resolve_target",
    "save_outputs",
    "sign_request",
    "stack_outputs",
    "upload",
]
