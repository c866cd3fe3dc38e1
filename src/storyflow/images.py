"""Images as job inputs (image-to-video): what counts as one, and where one may come from."""

from __future__ import annotations

from botocore.exceptions import ClientError

from storyflow import aws, keys
from storyflow.errors import BadRequest
from storyflow.settings import Settings

HEAD_BYTES = 16
# (signature at byte 0, media type); WebP is RIFF....WEBP
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def sniff_image(head: bytes, size: int) -> str | None:
    """Why these first bytes cannot be a PNG, JPEG or WebP image, or None if they look like one."""
    if size == 0:
        return "empty upload (0 bytes)"
    if any(head.startswith(signature) for signature, _ in _SIGNATURES):
        return None
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return None
    return f"not an image: no PNG, JPEG or WebP header (first bytes {head[:12]!r})"


def check_image_uri(uri: str, settings: Settings, field: str = "image_uri") -> None:
    """An image input must be an existing PNG/JPEG/WebP object in one of this stack's buckets."""
    location = keys.S3Location.parse(uri)
    buckets = {b for b in (settings.input_bucket, settings.output_bucket) if b}
    if location.bucket not in buckets:
        raise BadRequest(
            f"{field} must be in this stack's buckets ({', '.join(sorted(buckets))}), not {location.bucket}",
            field=field,
        )
    try:
        head = aws.client("s3").get_object(
            Bucket=location.bucket, Key=location.key, Range=f"bytes=0-{HEAD_BYTES - 1}"
        )
        first: bytes = head["Body"].read()
    except ClientError as error:
        if aws.error_code(error) in aws.OBJECT_MISSING | {"InvalidRange"}:
            raise BadRequest(f"{field} {uri[:200]} does not exist or is empty", field=field) from error
        raise
    refused = sniff_image(first, len(first))
    if refused:
        raise BadRequest(f"{field} {uri[:200]}: {refused}", field=field)
