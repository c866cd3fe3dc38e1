"""Nothing is left behind unintentionally: after a completed, a failed and a cancelled stereo job (and a stray
upload that matches no job), every object of theirs in both buckets is a kept final or expires (it carries
the intermediate tag, or its key falls under an expiring lifecycle rule of its bucket)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from storyflow_local.samples import make_clip
from tests.integration.conftest import FAULTY_STEREO_JOB
from tests.support import jobs_api
from tests.support.jobs_api import FINISHED
from tests.support.target import IntegrationTarget

TIMEOUT = 400
STRAY_KEY = "input/stray-upload-0000/notes.txt"


def wait_status(
    target: IntegrationTarget, job_id: str, statuses: set[str] | frozenset[str]
) -> dict[str, Any]:
    return jobs_api.wait_status(target, job_id, statuses, TIMEOUT)


def submit(target: IntegrationTarget, clip: Path) -> str:
    response = target.http("POST", "/jobs", json={"kind": "stereo"})
    assert response.status_code == 202, response.text
    accepted = response.json()
    ticket = accepted["upload"]
    with clip.open("rb") as handle:
        posted = requests.post(
            ticket["url"], data=ticket["fields"], files={"file": ("source.mp4", handle)}, timeout=120
        )
    assert posted.status_code in (200, 201, 204), posted.text
    job_id: str = accepted["job_id"]
    return job_id


def expiring_rules(s3: Any, bucket: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    return [r for r in rules if r.get("Status") == "Enabled" and (r.get("Expiration") or {}).get("Days")]


def rule_covers(rule: dict[str, Any], key: str, tags: dict[str, str]) -> bool:
    """Whether the lifecycle rule applies to an object with this key and these tags."""
    found = rule.get("Filter") or {}
    condition = found.get("And") or found
    prefix = condition.get("Prefix", rule.get("Prefix", "")) or ""
    wanted = condition.get("Tags") or ([condition["Tag"]] if "Tag" in condition else [])
    return key.startswith(prefix) and all(tags.get(t["Key"]) == t["Value"] for t in wanted)


def uncovered(target: IntegrationTarget, bucket: str, job_ids: list[str], finals: set[str]) -> list[str]:
    """The objects of these jobs (their id is in the key) and under input/ that neither are a kept final
    nor expire."""
    s3 = target.client("s3")
    rules = expiring_rules(s3, bucket)
    left = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            if not (key.startswith("input/") or any(j in key for j in job_ids)) or key in finals:
                continue
            tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
            if not any(rule_covers(rule, key, tags) for rule in rules):
                left.append(f"s3://{bucket}/{key} (tags {tags})")
    return left


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 s, 320x180, keyframes every 2 s: a few segments at the stack's segment length."""
    return make_clip(tmp_path_factory.mktemp("leftovers") / "source.mp4", seconds=24, width=320, height=180)


def test_every_object_of_a_completed_a_failed_and_a_cancelled_job_is_a_final_or_expires(
    target: IntegrationTarget, clip: Path
) -> None:
    inb, outb = target.outputs["InputBucketName"], target.outputs["OutputBucketName"]
    s3 = target.client("s3")
    # Given a completed job
    completed = submit(target, clip)
    assert wait_status(target, completed, FINISHED)["status"] == "completed"
    # ... a job that failed on one segment (the stereo engine's injected fault; maybe run already)
    if jobs_api.find_job(target, FAULTY_STEREO_JOB) is None:
        s3.put_object(
            Bucket=inb,
            Key=f"input/{FAULTY_STEREO_JOB}/source.mp4",
            Body=clip.read_bytes(),
            ContentType="video/mp4",
        )
    assert wait_status(target, FAULTY_STEREO_JOB, FINISHED)["status"] == "failed"
    # ... a job cancelled while it runs
    cancelled = submit(target, clip)
    wait_status(target, cancelled, {"running", *FINISHED})
    response = target.http("POST", f"/jobs/{cancelled}/cancel")
    assert response.status_code == 200, response.text
    assert wait_status(target, cancelled, FINISHED)["status"] == "cancelled"
    # ... and an upload under input/ that matches no job
    s3.put_object(Bucket=inb, Key=STRAY_KEY, Body=b"not a job's upload")

    # When both buckets are listed
    jobs = [completed, FAULTY_STEREO_JOB, cancelled]
    finals = {f"jobs/{completed}/final.mp4"}
    left = uncovered(target, inb, jobs, finals) + uncovered(target, outb, jobs, finals)

    # Then every object is the completed job's final, or expires (tagged, or under an expiring rule)
    assert left == [], "left behind:\n" + "\n".join(left)
    assert s3.head_object(Bucket=outb, Key=f"jobs/{completed}/final.mp4")
