"""What `sam package` does: upload local CodeUri/ContentUri/DefinitionUri to (emulated) S3.

Returns the rewritten template and, for the Lambda adapter, which local directory each uploaded
code object came from (so handlers run from the source tree, not from an extracted zip).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARTIFACT_BUCKET = "storyflow-local-artifacts"

_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git", "node_modules"}


@dataclass
class Artifacts:
    bucket: str = ARTIFACT_BUCKET
    code_dirs: dict[str, Path] = field(default_factory=dict)  # S3 key -> local directory
    files: dict[str, Path] = field(default_factory=dict)  # S3 key -> local file
    uploads: dict[str, bytes] = field(default_factory=dict)  # S3 key -> body (to upload)


def zip_directory(directory: Path) -> bytes:
    """A deterministic zip of a directory (sorted names, fixed timestamps, no caches)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(directory):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
            for name in sorted(files):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(root) / name
                info = zipfile.ZipInfo(str(path.relative_to(directory)), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _is_local(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith(("s3://", "https://", "http://"))


class Packager:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.artifacts = Artifacts()

    def _path(self, value: str) -> Path:
        path = (self.root / value).resolve()
        if not path.exists():
            raise FileNotFoundError(f"local artifact {value!r} does not exist (looked at {path})")
        return path

    def _add_dir(self, value: str) -> str:
        path = self._path(value)
        if path.is_file():
            return self._add_file(value)
        body = zip_directory(path)
        key = f"{hashlib.md5(body).hexdigest()}.zip"
        self.artifacts.uploads[key] = body
        self.artifacts.code_dirs[key] = path
        return key

    def _add_file(self, value: str) -> str:
        path = self._path(value)
        body = path.read_bytes()
        key = f"{hashlib.md5(body).hexdigest()}{path.suffix}"
        self.artifacts.uploads[key] = body
        self.artifacts.files[key] = path
        if path.suffix == ".zip":
            self.artifacts.code_dirs.setdefault(key, path)
        return key

    def package(self, template: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(template)
        bucket = self.artifacts.bucket
        globals_fn = out.get("Globals", {}).get("Function", {})
        if _is_local(globals_fn.get("CodeUri")):
            globals_fn["CodeUri"] = f"s3://{bucket}/{self._add_dir(globals_fn['CodeUri'])}"
        for resource in out.get("Resources", {}).values():
            kind = resource.get("Type")
            props = resource.get("Properties") or {}
            if kind == "AWS::Serverless::Function" and _is_local(props.get("CodeUri")):
                props["CodeUri"] = f"s3://{bucket}/{self._add_dir(props['CodeUri'])}"
            elif kind == "AWS::Serverless::LayerVersion" and _is_local(props.get("ContentUri")):
                props["ContentUri"] = f"s3://{bucket}/{self._add_dir(props['ContentUri'])}"
            elif kind == "AWS::Serverless::StateMachine" and _is_local(props.get("DefinitionUri")):
                props["DefinitionUri"] = {"Bucket": bucket, "Key": self._add_file(props["DefinitionUri"])}
            elif kind in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi") and _is_local(
                props.get("DefinitionUri")
            ):
                props["DefinitionUri"] = f"s3://{bucket}/{self._add_file(props['DefinitionUri'])}"
            elif kind == "AWS::Lambda::Function" and _is_local(props.get("Code")):
                props["Code"] = {"S3Bucket": bucket, "S3Key": self._add_dir(props["Code"])}
            elif kind == "AWS::Lambda::LayerVersion" and _is_local(props.get("Content")):
                props["Content"] = {"S3Bucket": bucket, "S3Key": self._add_dir(props["Content"])}
            elif kind == "AWS::StepFunctions::StateMachine" and _is_local(props.get("DefinitionS3Location")):
                key = self._add_file(props["DefinitionS3Location"])
                props["DefinitionS3Location"] = {"Bucket": bucket, "Key": key}
        return out

    def upload(self, s3: Any) -> None:
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=self.artifacts.bucket)
        for key, body in self.artifacts.uploads.items():
            s3.put_object(Bucket=self.artifacts.bucket, Key=key, Body=body)
