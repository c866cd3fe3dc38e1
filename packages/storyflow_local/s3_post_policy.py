"""Browser-based S3 uploads (a POST of a form to the bucket): the policy is enforced, as S3 does.

moto 5.2.5 stores whatever a POST form carries. S3 instead decodes the form's base64 `policy`, checks
its signature (SigV4 `x-amz-signature`, or SigV2 `signature`), its `expiration`, and every condition
(`{"field": value}` / `["eq", "$field", value]`, `["starts-with", "$field", prefix]`,
`["content-length-range", min, max]`), and refuses form fields no condition covers. A refused POST
stores nothing and answers S3's XML error: 403 AccessDenied ("Invalid according to Policy: ..."),
403 SignatureDoesNotMatch / InvalidAccessKeyId, 400 EntityTooLarge / EntityTooSmall (with the proposed
and allowed sizes), 400 InvalidPolicyDocument. A POST without a policy is anonymous, which the stack's
buckets (ACLs disabled, public access blocked) refuse: 403 AccessDenied.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from storyflow_local.patching import Patches
from storyflow_local.server import FAKE_CREDENTIALS

#: Form fields no condition has to cover (S3's documentation of POST policies).
UNCHECKED_FIELDS = frozenset({"file", "policy", "x-amz-signature", "signature", "awsaccesskeyid"})


class PostRefused(Exception):
    """S3's answer to a POST that breaks its policy: status, code, message and extra XML elements."""

    def __init__(self, status: int, code: str, message: str, **extra: object) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self) -> tuple[int, dict[str, str], str]:
        elements = "".join(f"<{name}>{escape(str(value))}</{name}>" for name, value in self.extra.items())
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{escape(self.message)}</Message>{elements}"
            f"<RequestId>{secrets.token_hex(8).upper()}</RequestId>"
            f"<HostId>{base64.b64encode(secrets.token_bytes(32)).decode()}</HostId></Error>"
        )
        return self.status, {"Content-Type": "application/xml"}, body


def _policy_failed(detail: str) -> PostRefused:
    return PostRefused(403, "AccessDenied", f"Invalid according to Policy: {detail}")


def _condition_text(operator: str, field: str, value: object) -> str:
    return json.dumps([operator, f"${field}", value], separators=(", ", ": "))


def secret_for(access_key: str) -> str | None:
    """The secret key of an access key the emulator knows (the local cloud's own, or an IAM user's)."""
    if access_key == FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]:
        return FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    from moto.iam.models import iam_backends

    for account in list(iam_backends.values()):
        for backend in list(account.values()):
            for user in list(backend.users.values()):
                for key in user.access_keys:
                    if key.access_key_id == access_key:
                        return str(key.secret_access_key)
    return None


def _sigv4_signature(secret: str, credential: str, policy: str) -> str:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise PostRefused(400, "InvalidArgument", f"Invalid credential: {credential}")
    _, date, region, service, _ = parts
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()


def _check_signature(fields: Mapping[str, str], policy: str) -> None:
    if "x-amz-signature" in fields:
        algorithm = fields.get("x-amz-algorithm", "")
        if algorithm != "AWS4-HMAC-SHA256":
            raise PostRefused(400, "InvalidArgument", f"Unsupported x-amz-algorithm: {algorithm!r}")
        credential = fields.get("x-amz-credential", "")
        access_key = credential.split("/", 1)[0]
        secret = secret_for(access_key)
        if secret is None:
            raise _unknown_key()
        expected = _sigv4_signature(secret, credential, policy)
        given = fields["x-amz-signature"]
    elif "signature" in fields:
        secret = secret_for(fields.get("awsaccesskeyid", ""))
        if secret is None:
            raise _unknown_key()
        digest = hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()
        expected, given = base64.b64encode(digest).decode(), fields["signature"]
    else:
        raise PostRefused(403, "AccessDenied", "Access Denied")
    if not hmac.compare_digest(expected, given):
        raise PostRefused(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )


def _unknown_key() -> PostRefused:
    return PostRefused(
        403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
    )


def _decode_policy(policy: str) -> dict[str, Any]:
    try:
        document = json.loads(base64.b64decode(policy, validate=True))
    except (binascii.Error, ValueError):
        raise PostRefused(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from None
    if not isinstance(document, dict):
        raise PostRefused(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.")
    return document


def _check_expiration(document: Mapping[str, Any], now: dt.datetime) -> None:
    raw = document.get("expiration")
    if not isinstance(raw, str):
        raise PostRefused(400, "InvalidPolicyDocument", "Invalid Policy: Policy missing expiration.")
    try:
        expires = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise PostRefused(
            400, "InvalidPolicyDocument", f"Invalid Policy: Invalid 'expiration' value: '{raw}'"
        ) from None
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    if expires <= now:
        raise _policy_failed("Policy expired.")


def check_post(bucket: str, fields: Mapping[str, str], size: int, *, now: dt.datetime | None = None) -> None:
    """Raise PostRefused unless the form (`fields`: names lower-cased, `key` with `${filename}`
    resolved) and a file of `size` bytes satisfy the form's signed policy."""
    policy = fields.get("policy")
    if not policy:
        raise PostRefused(403, "AccessDenied", "Access Denied")
    _check_signature(fields, policy)
    document = _decode_policy(policy)
    _check_expiration(document, now or dt.datetime.now(dt.UTC))
    conditions = document.get("conditions")
    if not isinstance(conditions, list):
        raise PostRefused(400, "InvalidPolicyDocument", "Invalid Policy: Policy missing conditions.")
    values = {**fields, "bucket": bucket}
    covered = {"bucket"}
    for condition in conditions:
        if isinstance(condition, dict) and len(condition) == 1:
            ((name, expected),) = condition.items()
            operator, field = "eq", str(name)
        elif isinstance(condition, list) and len(condition) == 3:
            operator = str(condition[0]).lower()
            if operator == "content-length-range":
                _check_size(size, condition[1], condition[2])
                continue
            field, expected = str(condition[1]), condition[2]
            if not field.startswith("$"):
                raise PostRefused(400, "InvalidPolicyDocument", f"Invalid Policy: Invalid condition: {field}")
            field = field[1:]
        else:
            raise PostRefused(400, "InvalidPolicyDocument", "Invalid Policy: Invalid Simple-Condition.")
        name = field.lower()
        covered.add(name)
        actual = values.get(name)
        if operator == "eq":
            ok = actual is not None and actual == str(expected)
        elif operator == "starts-with":
            ok = actual is not None and all(
                part.strip().startswith(str(expected))
                for part in (actual.split(",") if name == "content-type" else [actual])
            )
        else:
            raise PostRefused(
                400, "InvalidPolicyDocument", f"Invalid Policy: Invalid Condition operator: {operator}"
            )
        if not ok:
            raise _policy_failed(f"Policy Condition failed: {_condition_text(operator, field, expected)}")
    extra = [
        name
        for name in fields
        if name not in covered and name not in UNCHECKED_FIELDS and not name.startswith("x-ignore-")
    ]
    if extra:
        raise _policy_failed(f"Extra input fields: {', '.join(extra)}")


def _check_size(size: int, low: object, high: object) -> None:
    try:
        minimum, maximum = int(str(low)), int(str(high))
    except ValueError:
        raise PostRefused(
            400, "InvalidPolicyDocument", "Invalid Policy: Invalid content-length-range."
        ) from None
    if size > maximum:
        raise PostRefused(
            400,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
            ProposedSize=size,
            MaxSizeAllowed=maximum,
        )
    if size < minimum:
        raise PostRefused(
            400,
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size",
            ProposedSize=size,
            MinSizeAllowed=minimum,
        )


def _form_fields(request: Any) -> dict[str, str]:
    fields = {str(name).lower(): str(value) for name, value in request.form.items()}
    upload = request.files.get("file") if request.files else None
    if "key" in fields and upload is not None and upload.filename:
        fields["key"] = fields["key"].replace("${filename}", upload.filename)
    return fields


def install(patches: Patches) -> None:
    """Check every browser-based POST upload (a form with a `key`) before moto stores it."""
    from moto.s3.responses import S3Response

    original = S3Response._bucket_response_post

    def bucket_response_post(self: Any, request: Any, bucket_name: str) -> Any:
        if "key" not in request.form or "delete" in request.args:
            return original(self, request, bucket_name)
        body = self.body
        size = len(body.encode() if isinstance(body, str) else body) if isinstance(body, bytes | str) else 0
        try:
            check_post(bucket_name, _form_fields(request), size)
        except PostRefused as refused:
            return refused.response()
        return original(self, request, bucket_name)

    patches.set(S3Response, "_bucket_response_post", bucket_response_post)
