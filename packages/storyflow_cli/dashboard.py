"""Publish the built dashboard (web/dist) to a deployed stack: `make publish-dashboard STACK=NAME`
(`python -m storyflow_cli.dashboard --stack NAME`), after `sam deploy` of a stack with UserPoolArn.

Uploads every file of the build to the DashboardBucket output (hashed assets cached for a year, the rest
revalidated), writes config.json from the stack's outputs (UserApiUrl, the Cognito app client and hosted UI),
removes files of older builds, and invalidates CloudFront's copies of what is not content-hashed.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import time
from pathlib import Path
from typing import Any

import boto3

from storyflow_cli.target import stack_outputs

REQUIRED_OUTPUTS = (
    "DashboardBucketName",
    "DashboardDistributionId",
    "DashboardUrl",
    "DashboardUserPoolClientId",
    "DashboardAuthUrl",
    "UserApiUrl",
)
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def config_document(outputs: dict[str, str]) -> dict[str, Any]:
    """What the app reads from /config.json on a deployed stack: UserApi and the Cognito sign-in."""
    missing = [name for name in REQUIRED_OUTPUTS if not outputs.get(name)]
    if missing:
        raise ValueError(
            f"the stack has no {', '.join(missing)} output(s): deploy it with UserPoolArn set "
            "(README: Dashboard)"
        )
    return {
        "apiBase": outputs["UserApiUrl"].rstrip("/"),
        "auth": "cognito",
        "cognito": {
            "domain": outputs["DashboardAuthUrl"].rstrip("/"),
            "clientId": outputs["DashboardUserPoolClientId"],
            "scopes": ["openid", "email", "profile"],
        },
    }


def _content_type(path: Path) -> str:
    overrides = {".js": "text/javascript", ".mjs": "text/javascript", ".svg": "image/svg+xml"}
    base = overrides.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{base}; charset=utf-8" if base.startswith("text/") or base.endswith("javascript") else base


def publish(dist: Path, outputs: dict[str, str], s3: Any, cloudfront: Any) -> list[str]:
    """Upload the build and config.json; delete stale files; invalidate. Returns the keys written."""
    config = config_document(outputs)
    if not (dist / "index.html").is_file():
        raise FileNotFoundError(f"{dist}/index.html is missing: build the dashboard with `make web`")
    bucket = outputs["DashboardBucketName"]
    written: list[str] = []
    for path in sorted(p for p in dist.rglob("*") if p.is_file() and not p.name.startswith(".")):
        key = path.relative_to(dist).as_posix()
        if key == "config.json":
            continue
        cache = IMMUTABLE if key.startswith("assets/") else REVALIDATE
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=path.read_bytes(),
            ContentType=_content_type(path),
            CacheControl=cache,
        )
        written.append(key)
    s3.put_object(
        Bucket=bucket,
        Key="config.json",
        Body=json.dumps(config, indent=2).encode(),
        ContentType="application/json",
        CacheControl="no-store",
    )
    written.append("config.json")
    keep = set(written)
    stale = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
        if item["Key"] not in keep
    ]
    for start in range(0, len(stale), 1000):
        s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key} for key in stale[start : start + 1000]]}
        )
    paths = ["/" + key for key in written if not key.startswith("assets/")] + ["/"]
    cloudfront.create_invalidation(
        DistributionId=outputs["DashboardDistributionId"],
        InvalidationBatch={
            "Paths": {"Quantity": len(paths), "Items": paths},
            "CallerReference": f"storyflow-{time.time_ns()}",
        },
    )
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stack", required=True, help="The deployed stack (with UserPoolArn).")
    parser.add_argument("--region", default=None)
    parser.add_argument("--dist", type=Path, default=Path(__file__).resolve().parents[2] / "web" / "dist")
    args = parser.parse_args(argv)
    outputs = stack_outputs(args.stack, args.region)
    session = boto3.session.Session(region_name=args.region)
    written = publish(args.dist, outputs, session.client("s3"), session.client("cloudfront"))
    print(f"published {len(written)} files; the dashboard: {outputs['DashboardUrl']}")


if __name__ == "__main__":
    main()
