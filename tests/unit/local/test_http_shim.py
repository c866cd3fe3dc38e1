"""HTTP shim: requests become API Gateway REST proxy events for the template's Api routes."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from storyflow_local import LocalCloud
from storyflow_local.http_shim import Route, find_route


def _call(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_a_path_parameter_route(app_cloud: LocalCloud) -> None:
    # When GET /items/{item_id} is called with a query string
    status, headers, body = _call(f"{app_cloud.api_url}/items/abc?x=1&x=2&y=3")
    event = json.loads(body)
    # Then the function got the REST proxy event and its response came back
    assert status == 200
    assert headers["X-Fixture"] == "yes"
    assert event["resource"] == "/items/{item_id}"
    assert event["path"] == "/items/abc"
    assert event["pathParameters"] == {"item_id": "abc"}
    assert event["query"] == {"x": "2", "y": "3"}
    assert event["multiQuery"] == {"x": ["1", "2"], "y": ["3"]}
    assert event["stage"] == "local"


def test_greedy_proxy_post_body_and_claims(app_cloud: LocalCloud) -> None:
    claims = base64.urlsafe_b64encode(json.dumps({"sub": "u1"}).encode()).decode().rstrip("=")
    status, _, body = _call(
        f"{app_cloud.api_url}/files/a/b/c.txt", "PUT", b"data", {"Authorization": f"Bearer x.{claims}.y"}
    )
    event = json.loads(body)
    assert status == 200
    assert event["pathParameters"] == {"proxy": "a/b/c.txt"}
    assert event["body"] == "data"
    assert event["claims"] == {"sub": "u1"}
    status, _, body = _call(f"{app_cloud.api_url}/items", "POST", b'{"k": 1}')
    assert status == 201 and json.loads(body)["body"] == '{"k": 1}'


def test_a_chunked_body_reaches_the_function_whole(app_cloud: LocalCloud) -> None:
    # Given a client that streams its body with chunked transfer encoding (no Content-Length)
    def chunks() -> Iterator[bytes]:
        yield b'{"k": '
        yield b'"chunked", "n": 2}'

    request = urllib.request.Request(f"{app_cloud.api_url}/items", data=chunks(), method="POST")
    # When it is sent  Then the function got the reassembled body, as behind API Gateway
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        assert json.loads(json.loads(response.read())["body"]) == {"k": "chunked", "n": 2}


def test_errors_like_api_gateway(app_cloud: LocalCloud) -> None:
    assert _call(f"{app_cloud.api_url}/boom")[0] == 502
    assert _call(f"{app_cloud.api_url}/nothing-here")[0] == 403
    assert _call(f"{app_cloud.api_url}/items", "DELETE")[0] == 403


def test_the_stack_output_points_at_the_shim(app_cloud: LocalCloud) -> None:
    assert app_cloud.outputs["ApiUrl"] == app_cloud.api_url
    assert app_cloud.api_url.startswith("http://127.0.0.1:") and app_cloud.api_url.endswith("/local")


def test_route_matching_prefers_specific_routes() -> None:
    routes = [
        Route("A", "/jobs/{job_id}", "GET", "F1"),
        Route("A", "/jobs/stats", "GET", "F2"),
        Route("A", "/{proxy+}", "ANY", "F3"),
    ]
    assert find_route(routes, "GET", "/jobs/stats")[0].function == "F2"
    assert find_route(routes, "GET", "/jobs/x")[1] == {"job_id": "x"}
    assert find_route(routes, "POST", "/jobs/x")[0].function == "F3"
    assert find_route([Route("A", "/a", "GET", "F")], "POST", "/a") is None
    assert find_route([Route("A", "/a", "GET", "F")], "GET", "/b") is None
