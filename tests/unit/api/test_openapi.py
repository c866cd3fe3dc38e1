"""docs/openapi.json is the API's generated document: a change to routes or models must regenerate it."""

from __future__ import annotations

import json

import pytest

from storyflow import openapi


def test_committed_document_matches_the_code() -> None:
    # Given the routes and models as they are  When the document is generated
    generated = openapi.render()

    # Then it is exactly the committed docs/openapi.json
    committed = openapi.DOCUMENT.read_text() if openapi.DOCUMENT.exists() else ""
    assert generated == committed, "docs/openapi.json is stale: run `make openapi` and commit the result"


def test_document_describes_every_route_and_the_real_error_shape() -> None:
    doc = openapi.document()
    assert doc["info"]["title"] == "storyflow"
    routes = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert routes == {
        ("post", "/jobs"),
        ("get", "/jobs"),
        ("get", "/jobs/{job_id}"),
        ("post", "/jobs/{job_id}/cancel"),
        ("post", "/jobs/{job_id}/scenes/{scene}/regenerate"),
        ("get", "/jobs/{job_id}/outputs"),
        ("get", "/health"),
        ("get", "/workflows"),
        ("get", "/start"),
    }
    submit = doc["paths"]["/jobs"]["post"]
    assert set(submit["responses"]) == {"202", "400", "409", "413", "503"}
    (header,) = submit["parameters"]
    assert (header["in"], header["name"].lower(), header["required"]) == ("header", "idempotency-key", False)
    assert set(
        submit["requestBody"]["content"]["application/json"]["schema"]["discriminator"]["mapping"]
    ) == {
        "stereo",
        "video",
        "tts",
        "story",
    }
    # Validation failures are answered 400 ApiError, so the document never promises Powertools' 422
    text = json.dumps(doc)
    assert '"422"' not in text and "HTTPValidationError" not in text
    job_id = doc["paths"]["/jobs/{job_id}"]["get"]["parameters"][0]
    assert job_id["schema"]["pattern"] == "^[a-z0-9][a-z0-9-]{7,63}$"
    regenerate = doc["paths"]["/jobs/{job_id}/scenes/{scene}/regenerate"]["post"]
    assert set(regenerate["responses"]) == {"202", "400", "404", "409", "413", "503"}
    scene = next(p for p in regenerate["parameters"] if p["name"] == "scene")
    assert (scene["in"], scene["schema"]["minimum"], scene["schema"]["maximum"]) == ("path", 0, 49)


def test_main_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    # When `python -m storyflow.openapi` runs (its main)  Then stdout is the document (`make openapi`)
    openapi.main()
    assert json.loads(capsys.readouterr().out) == openapi.document()
