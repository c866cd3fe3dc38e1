"""CORS for the dashboard's origin only (DASHBOARD_ORIGIN, set on UserApi's functions when the stack has a
dashboard): the answers of a request from that origin carry Access-Control-Allow-Origin; other origins get
none. Empty (IAM-only stacks, the local cloud, which serves the dashboard from the API's own origin): no CORS.
"""

from __future__ import annotations

import os

from aws_lambda_powertools.event_handler import CORSConfig

ORIGIN_ENV = "DASHBOARD_ORIGIN"
ALLOW_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key"]
EXPOSE_HEADERS = ["Retry-After"]


def dashboard_cors() -> CORSConfig | None:
    origin = os.environ.get(ORIGIN_ENV, "").strip().rstrip("/")
    if not origin:
        return None
    return CORSConfig(
        allow_origin=origin, allow_headers=ALLOW_HEADERS, expose_headers=EXPOSE_HEADERS, max_age=600
    )
