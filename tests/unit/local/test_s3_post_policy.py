"""Presigned POST uploads: the local S3 enforces the signed policy's conditions as S3 does (moto does not)."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from storyflow_local import LocalCloud
from storyflow_local.server import FAKE_CREDENTIALS

KEY = "tickets/job-aaaaaaaa/source.mp4"
MAX_BYTES = 64


def ticket(cloud: LocalCloud, key: str = KEY, expires: int = 300, signature: str = "s3v4") -> dict[str, Any]:
    """A presigned POST like the API's (SigV4): that key, Content-Type video/mp4, 1..MAX_BYTES bytes."""
    s3 = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=cloud.endpoint_url,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        config=Config(signature_version=signature),
    )
    post: dict[str, Any] = s3.generate_presigned_post(
        Bucket=cloud.outputs["UploadBucketName"],
        Key=key,
        Fields={"Content-Type": "video/mp4"},
        Conditions=[{"Content-Type": "video/mp4"}, ["content-length-range", 1, MAX_BYTES]],
        ExpiresIn=expires,
    )
    return post


def post(ticket: dict[str, Any], data: bytes = b"x" * 10, **changes: str) -> requests.Response:
    fields = {**ticket["fields"], **changes}
    return requests.post(ticket["url"], data=fields, files={"file": ("source.mp4", data)}, timeout=10)


def error_of(response: requests.Response) -> dict[str, str]:
    root = ET.fromstring(response.content)
    return {child.tag: child.text or "" for child in root}


def stored(cloud: LocalCloud, key: str) -> bool:
    try:
        cloud.client("s3").head_object(Bucket=cloud.outputs["UploadBucketName"], Key=key)
    except ClientError:
        return False
    return True


@pytest.mark.parametrize("signature", ["s3v4", "s3"])
def test_a_post_that_keeps_to_its_ticket_is_stored(app_cloud: LocalCloud, signature: str) -> None:
    # Given a presigned POST (SigV4, or SigV2); When the file is posted as the ticket says
    key = f"tickets/ok-{signature}-aaaaaaaa/source.mp4"
    response = post(ticket(app_cloud, key, signature=signature))
    # Then S3 answers 204 and stores it
    assert response.status_code == 204, response.text
    assert stored(app_cloud, key)


def test_a_sigv2_ticket_with_a_forged_signature_is_refused(app_cloud: LocalCloud) -> None:
    response = post(ticket(app_cloud, signature="s3"), b"x" * 10, signature="AAAA")
    assert response.status_code == 403, response.text
    assert error_of(response)["Code"] == "SignatureDoesNotMatch"
    assert not stored(app_cloud, KEY)


@pytest.mark.parametrize(
    ("case", "data", "changes", "status", "code", "message"),
    [
        (
            "another job's key",
            b"x" * 10,
            {"key": "tickets/other-bbbbbbbb/source.mp4"},
            403,
            "AccessDenied",
            'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "' + KEY + '"]',
        ),
        (
            "another content type",
            b"x" * 10,
            {"Content-Type": "text/html"},
            403,
            "AccessDenied",
            'Invalid according to Policy: Policy Condition failed: ["eq", "$Content-Type", "video/mp4"]',
        ),
        (
            "an oversize file",
            b"x" * (MAX_BYTES + 1),
            {},
            400,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
        ),
        (
            "an empty file",
            b"",
            {},
            400,
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size",
        ),
        (
            "a field the policy does not cover",
            b"x" * 10,
            {"x-amz-meta-owner": "mallory"},
            403,
            "AccessDenied",
            "Invalid according to Policy: Extra input fields: x-amz-meta-owner",
        ),
        (
            "a forged signature",
            b"x" * 10,
            {"x-amz-signature": "0" * 64},
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        ),
    ],
)
def test_a_post_that_breaks_its_ticket_is_refused_with_s3s_error_and_nothing_is_stored(
    app_cloud: LocalCloud,
    case: str,
    data: bytes,
    changes: dict[str, str],
    status: int,
    code: str,
    message: str,
) -> None:
    # Given a presigned POST for KEY
    given = ticket(app_cloud)
    # When the form is posted with {case}
    response = post(given, data, **changes)
    # Then S3's XML error comes back, and no object was stored under either key
    assert response.status_code == status, (case, response.text)
    error = error_of(response)
    assert (error["Code"], error["Message"]) == (code, message), case
    assert error["RequestId"] and error["HostId"]
    if code == "EntityTooLarge":
        assert (error["ProposedSize"], error["MaxSizeAllowed"]) == (str(MAX_BYTES + 1), str(MAX_BYTES))
    assert not stored(app_cloud, KEY)
    assert not stored(app_cloud, changes.get("key", KEY))


def test_an_expired_ticket_is_refused(app_cloud: LocalCloud) -> None:
    # Given a presigned POST whose policy expired a minute ago
    given = ticket(app_cloud, expires=-60)
    # When the file is posted
    response = post(given)
    # Then 403 "Policy expired." and nothing stored
    assert response.status_code == 403, response.text
    assert error_of(response)["Message"] == "Invalid according to Policy: Policy expired."
    assert not stored(app_cloud, KEY)


def test_a_policy_rewritten_by_the_client_fails_its_signature(app_cloud: LocalCloud) -> None:
    # Given a presigned POST whose policy the client widens (any key, any size) without re-signing
    given = ticket(app_cloud)
    document = json.loads(base64.b64decode(given["fields"]["policy"]))
    document["conditions"] = [c for c in document["conditions"] if not isinstance(c, list)]
    document["conditions"] = [c for c in document["conditions"] if "key" not in c]
    forged = base64.b64encode(json.dumps(document).encode()).decode()
    # When a different key is posted under it
    response = post(given, b"x" * 1000, policy=forged, key="tickets/other-bbbbbbbb/source.mp4")
    # Then the signature does not match, and nothing is stored
    assert response.status_code == 403, response.text
    assert error_of(response)["Code"] == "SignatureDoesNotMatch"
    assert not stored(app_cloud, "tickets/other-bbbbbbbb/source.mp4")


def test_a_post_without_a_policy_is_anonymous_and_refused(app_cloud: LocalCloud) -> None:
    # Given no ticket at all; When a form with only a key and the file is posted
    url = ticket(app_cloud)["url"]
    response = requests.post(url, data={"key": KEY}, files={"file": ("source.mp4", b"x")}, timeout=10)
    # Then 403 AccessDenied, nothing stored
    assert response.status_code == 403, response.text
    assert error_of(response)["Code"] == "AccessDenied"
    assert not stored(app_cloud, KEY)
