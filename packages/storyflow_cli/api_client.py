"""The jobs API over HTTP: SigV4 signing (botocore) for IAM-auth API Gateways, retries, error mapping."""

from __future__ import annotations

import re
import time
from typing import Any

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from storyflow import __version__
from storyflow.keys import JOB_ID_PATTERN
from storyflow_cli.errors import ApiFailure, CliError
from storyflow_cli.target import Target


def sign_request(prepared: requests.PreparedRequest, region: str, credentials: Any = None) -> None:
    """SigV4 (service execute-api) over exactly the headers and body that will be sent."""
    creds = credentials or boto3.session.Session().get_credentials()
    if creds is None:
        raise CliError("no AWS credentials found to sign the request (the API uses IAM auth)")
    body = prepared.body or b""
    aws_request = AWSRequest(
        method=prepared.method,
        url=prepared.url,
        data=body.encode() if isinstance(body, str) else body,
        headers=dict(prepared.headers),
    )
    SigV4Auth(creds.get_frozen_credentials(), "execute-api", region).add_auth(aws_request)
    prepared.headers.update(dict(aws_request.headers.items()))


def job_path(job_id: str, suffix: str = "") -> str:
    """`/jobs/{job_id}{suffix}`, refusing ids that are not storyflow ids before anything is sent."""
    if not re.fullmatch(JOB_ID_PATTERN, job_id):
        raise CliError(
            f"{job_id!r} is not a storyflow job id (expected e.g. stereo-20261123-0123456789ab)", 2
        )
    return f"/jobs/{job_id}{suffix}"


class ApiClient:
    """The jobs API over HTTP. A request that is safe to repeat (a GET, or one carrying an Idempotency-Key)
    is retried with backoff when the API cannot be reached or answers 429/502/503/504."""

    RETRY_STATUSES = frozenset({429, 502, 503, 504})

    def __init__(
        self,
        target: Target,
        session: requests.Session | None = None,
        timeout: float = 30,
        retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0),
    ) -> None:
        self.target = target
        self.session = session or requests.Session()
        self.timeout = timeout
        self.retry_delays = retry_delays

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        url = self.target.api_url.rstrip("/") + path
        request = requests.Request(
            method,
            url,
            json=body,
            params={k: v for k, v in (params or {}).items() if v is not None},
            headers={
                "Accept": "application/json",
                "User-Agent": f"storyflow-cli/{__version__}",
                **(headers or {}),
            },
        )
        if self.target.id_token:
            request.headers["Authorization"] = self.target.id_token
        repeatable = method == "GET" or "Idempotency-Key" in request.headers
        delays = list(self.retry_delays) if repeatable else []
        while True:
            prepared = self.session.prepare_request(request)
            if self.target.signed:
                sign_request(prepared, self.target.signing_region)  # a fresh signature (and date) per try
            try:
                response = self.session.send(prepared, timeout=self.timeout)
            except requests.RequestException as error:
                if delays:
                    time.sleep(delays.pop(0))
                    continue
                raise CliError(f"cannot reach {url}: {error}") from error
            if response.status_code in self.RETRY_STATUSES and delays:
                time.sleep(min(float(response.headers.get("Retry-After") or delays[0]), 10.0))
                delays.pop(0)
                continue
            break
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = {"message": response.text[:500]}
        if response.status_code >= 400:
            data = data if isinstance(data, dict) else {}
            message = data.get("message") or data.get("Message") or response.reason or "request failed"
            raise ApiFailure(response.status_code, str(message), data.get("field"))
        return data
