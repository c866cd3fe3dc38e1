"""The jobs API as the integration tests use it: a call that must succeed, a job that may not exist yet, and
waiting for a job to reach a status (a positive signal, with backoff)."""

from __future__ import annotations

from typing import Any

from tests.support.poll import wait_until
from tests.support.target import IntegrationTarget

FINISHED = frozenset({"completed", "failed", "cancelled"})


def api(target: IntegrationTarget, method: str, path: str, **kwargs: Any) -> Any:
    """The JSON answer of a call that must succeed (any status >= 300 fails the test, saying why)."""
    response = target.http(method, path, **kwargs)
    assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
    return response.json()


def find_job(target: IntegrationTarget, job_id: str) -> dict[str, Any] | None:
    """The job, or None while it does not exist (a queued message's or a direct upload's job appears only
    once its intake has handled it); any other answer than 200 or 404 fails the test."""
    response = target.http("GET", f"/jobs/{job_id}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def wait_status(
    target: IntegrationTarget,
    job_id: str,
    statuses: set[str] | frozenset[str],
    timeout: float,
    *,
    missing_ok: bool = True,
) -> dict[str, Any]:
    """Wait until the job is in one of `statuses`; with `missing_ok=False` a job that does not exist fails
    at once instead of being waited for."""

    def job() -> dict[str, Any] | None:
        if missing_ok:
            return find_job(target, job_id)
        found: dict[str, Any] = api(target, "GET", f"/jobs/{job_id}")
        return found

    found = wait_until(
        job,
        timeout,
        f"job {job_id} {'/'.join(sorted(statuses))}",
        until=lambda j: j is not None and j["status"] in statuses,
    )
    assert found is not None
    return found


def wait_finished(
    target: IntegrationTarget, job_id: str, timeout: float, *, missing_ok: bool = True
) -> dict[str, Any]:
    return wait_status(target, job_id, FINISHED, timeout, missing_ok=missing_ok)
