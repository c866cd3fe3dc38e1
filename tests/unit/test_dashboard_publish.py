"""`make publish-dashboard`: the build and its config.json go to the stack's dashboard bucket."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from storyflow_cli import dashboard

OUTPUTS = {
    "DashboardBucketName": "storyflow-dashboard",
    "DashboardDistributionId": "E2EXAMPLE",
    "DashboardUrl": "https://d111111abcdef8.cloudfront.net/",
    "DashboardUserPoolClientId": "client123",
    "DashboardAuthUrl": "https://sf-1234.auth.us-east-1.amazoncognito.com",
    "UserApiUrl": "https://abc.execute-api.us-east-1.amazonaws.com/dev/",
}


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    (tmp_path / ".built").write_text("")
    return tmp_path


def test_publish_uploads_the_build_and_its_config(dist: Path) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=OUTPUTS["DashboardBucketName"])
        s3.put_object(Bucket=OUTPUTS["DashboardBucketName"], Key="assets/index-old.js", Body=b"old")
        calls: list[dict[str, object]] = []

        class FakeCloudFront:
            def create_invalidation(self, **kwargs: object) -> None:
                calls.append(kwargs)

        # Given a build and a stack's outputs  When it is published
        written = dashboard.publish(dist, OUTPUTS, s3, FakeCloudFront())

        # Then every file of the build is in the bucket with its type and cache policy, and no stamp file
        bucket = OUTPUTS["DashboardBucketName"]
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
        expected = ["assets/index-abc123.js", "config.json", "favicon.svg", "index.html"]
        assert keys == sorted(written) == expected
        asset = s3.head_object(Bucket=bucket, Key="assets/index-abc123.js")
        assert asset["ContentType"].startswith("text/javascript") and "immutable" in asset["CacheControl"]
        assert s3.head_object(Bucket=bucket, Key="index.html")["CacheControl"] == "no-cache"
        # And config.json points the app at UserApi with the Cognito sign-in
        config = json.loads(s3.get_object(Bucket=bucket, Key="config.json")["Body"].read())
        assert config == {
            "apiBase": "https://abc.execute-api.us-east-1.amazonaws.com/dev",
            "auth": "cognito",
            "cognito": {
                "domain": OUTPUTS["DashboardAuthUrl"],
                "clientId": "client123",
                "scopes": ["openid", "email", "profile"],
            },
        }
        # And CloudFront forgets what is not content-hashed
        (call,) = calls
        assert call["DistributionId"] == "E2EXAMPLE"
        assert set(call["InvalidationBatch"]["Paths"]["Items"]) == {  # type: ignore[index]
            "/index.html",
            "/favicon.svg",
            "/config.json",
            "/",
        }


def test_publish_refuses_a_stack_without_a_dashboard(dist: Path) -> None:
    with pytest.raises(ValueError, match="UserPoolArn"):
        dashboard.publish(dist, {"ApiUrl": "https://x"}, None, None)
