"""Rules of DESIGN.md that no linter checks as written, and the variants behind two checkov skips."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.template import load_template

RESOURCES: dict[str, dict[str, Any]] = load_template().get("Resources", {})


def _of_type(kind: str) -> list[str]:
    return sorted(n for n, r in RESOURCES.items() if r.get("Type") == kind)


def _props(name: str) -> dict[str, Any]:
    props: dict[str, Any] = RESOURCES[name].get("Properties") or {}
    return props


def _refers_to(value: Any, logical_id: str) -> bool:
    if value == {"Ref": logical_id} or (
        isinstance(value, dict) and value.get("Fn::GetAtt", [None])[0] == logical_id
    ):
        return True
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        return f"${{{logical_id}" in text
    if isinstance(value, list):
        return any(_refers_to(v, logical_id) for v in value)
    return False


@pytest.mark.parametrize("name", _of_type("AWS::SQS::Queue"))
def test_queue_is_encrypted(name: str) -> None:
    # Given a queue (checkov's CKV_AWS_27 is skipped: it only knows KmsMasterKeyId),
    # Then it is encrypted with SSE-SQS or a KMS key.
    props = _props(name)
    assert props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId"), (
        f"{name}: set SqsManagedSseEnabled: true (or KmsMasterKeyId)"
    )


@pytest.mark.parametrize("name", _of_type("AWS::S3::Bucket"))
def test_bucket_is_tls_only(name: str) -> None:
    # Given a bucket, Then a bucket policy denies every request made without TLS.
    policies = [
        _props(p) for p in _of_type("AWS::S3::BucketPolicy") if _props(p).get("Bucket") == {"Ref": name}
    ]
    denies = [
        s
        for policy in policies
        for s in policy.get("PolicyDocument", {}).get("Statement", [])
        if s.get("Effect") == "Deny"
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
        and _refers_to(s.get("Resource"), name)
    ]
    assert denies, f"{name}: no bucket policy statement denying aws:SecureTransport=false"


@pytest.mark.parametrize("name", _of_type("AWS::S3::Bucket"))
def test_bucket_blocks_public_access_and_is_encrypted(name: str) -> None:
    # Given a bucket, Then all four public-access blocks are on and default encryption is set.
    props = _props(name)
    block = props.get("PublicAccessBlockConfiguration") or {}
    flags = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    assert all(block.get(f) is True for f in flags), f"{name}: PublicAccessBlockConfiguration incomplete"
    assert props.get("BucketEncryption"), f"{name}: no BucketEncryption"
