"""S3 bucket notifications → Lambda: asynchronous, with the S3 event."""

from __future__ import annotations

from storyflow_local import LocalCloud
from tests.unit.local.support import recorded, wait_for


def test_an_object_created_under_the_prefix_invokes_the_function(app_cloud: LocalCloud) -> None:
    # Given the recorder's S3 event on UploadBucket (prefix incoming/)
    bucket = app_cloud.outputs["UploadBucketName"]
    s3 = app_cloud.client("s3")
    # When objects are created inside and outside the prefix
    s3.put_object(Bucket=bucket, Key="other/x.txt", Body=b"1")
    s3.put_object(Bucket=bucket, Key="incoming/x.txt", Body=b"12")
    # Then only the one under incoming/ reached the function, as an S3 event
    (event,) = wait_for(lambda: recorded(app_cloud, "aws:s3"))
    record = event["Records"][0]
    assert record["s3"]["bucket"]["name"] == bucket
    assert record["s3"]["object"]["key"] == "incoming/x.txt"
    assert record["eventName"].startswith("ObjectCreated")
