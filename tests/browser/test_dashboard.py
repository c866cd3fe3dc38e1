"""The dashboard in a real browser, against the local cloud: submit, watch, play, fail, refuse.

Given/When/Then in each test; every wait is on something the page shows (Playwright's auto-waiting
locators), never a fixed sleep.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests

from storyflow_local import LocalCloud
from storyflow_local.samples import make_clip
from tests.browser.conftest import Console
from tests.support.poll import wait_until

JOB_TIMEOUT_MS = 120_000
# Upload speed in the browser (bytes/s, Chrome network emulation), so a small clip's upload takes about a
# second and reports progress on the way instead of finishing in one event.
UPLOAD_BYTES_PER_SECOND = 48 * 1024
# Watches every <progress> on the page and records the values it shows.
RECORD_PROGRESS = """() => {
  window.__progress = [];
  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.target instanceof HTMLProgressElement) window.__progress.push(change.target.value);
    }
  }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["value"] });
}"""


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s 192x112 H.264 clip with audio (about 70 KiB): one segment, seconds to convert."""
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    return make_clip(path, seconds=3, width=192, height=112, fps=12, keyframe_seconds=1)


@pytest.fixture(scope="module")
def not_a_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "notes.mp4"
    path.write_bytes(b"these are my notes, not a video\n" * 8)
    return path


@pytest.fixture(scope="module")
def finished(cloud: LocalCloud) -> dict[str, str]:
    """Job ids the tests of this module leave behind, by what they are (e.g. "completed")."""
    return {}


def open_form(page: Any, dashboard_url: str, kind: str) -> None:
    page.goto(f"{dashboard_url}#/submit/{kind}")
    page.get_by_role("button", name=re.compile("submit", re.I)).wait_for()


def job_id_of(page: Any) -> str:
    page.wait_for_url(re.compile(r"#/jobs/[a-z0-9-]+$"))
    return str(page.url.rsplit("/", 1)[-1])


def play_output_video(page: Any, dashboard_url: str, job_id: str) -> Any:
    """Open a job's page, and play its output video once it has data (muted: headless autoplay rules) until
    its time advances; the video's locator."""
    page.goto(f"{dashboard_url}#/jobs/{job_id}")
    video = page.locator(".outputs video")
    video.wait_for()
    wait_until(lambda: video.evaluate("v => v.readyState"), 20, "the video's data", until=lambda s: s >= 2)
    video.evaluate("v => { v.muted = true; return v.play(); }")
    wait_until(lambda: video.evaluate("v => v.currentTime"), 20, "the video to play", until=lambda t: t > 0.2)
    return video


def test_stereo_job_submitted_through_the_form_uploads_with_progress_and_completes(
    page: Any, dashboard_url: str, clip: Path, finished: dict[str, str]
) -> None:
    # Given the stereo form, and an upload link slow enough to report progress
    open_form(page, dashboard_url, "stereo")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": UPLOAD_BYTES_PER_SECOND,
        },
    )
    page.evaluate(RECORD_PROGRESS)

    # When a clip is chosen (by its label) and the form is sent
    page.get_by_label("File").set_input_files(str(clip))
    page.get_by_label("Layout").select_option("full")
    page.get_by_role("button", name="Upload and submit").click()

    # Then the upload's progress bar moved through values between 0 and 100 before reaching 100
    job_id = job_id_of(page)
    values: list[float] = page.evaluate("window.__progress")
    assert values and values[-1] == 100, values
    assert any(0 < value < 100 for value in values), f"the upload progress never moved: {values}"
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )

    # And the job page follows the job live to completed, every stage done and every segment counted
    page.locator("#job-status .badge", has_text="completed").wait_for(timeout=JOB_TIMEOUT_MS)
    assert page.locator(".stage.done").all_inner_texts() == ["chunking", "inferring", "reassembling"]
    assert re.fullmatch(r"(\d+) of \1 segments", page.locator("#job-progress-text").inner_text())
    # (the outputs are fetched once the job is completed: wait for the link, do not sample it)
    page.get_by_role("link", name="Download final.mp4").wait_for(timeout=JOB_TIMEOUT_MS)
    finished["completed"] = job_id

    # And the job list shows it among the completed jobs
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_role("link", name="completed", exact=True).click()
    page.locator(f'tr[data-job-id="{job_id}"]').wait_for()


def test_completed_stereo_output_plays_in_the_page_with_an_eye_toggle(
    page: Any, dashboard_url: str, finished: dict[str, str]
) -> None:
    job_id = finished.get("completed")
    if job_id is None:
        pytest.skip("needs the completed job of the submission test")
    # Given a completed stereo job's page  When its video is played  Then it plays: its time advances
    video = play_output_video(page, dashboard_url, job_id)
    width, height = video.evaluate("v => [v.videoWidth, v.videoHeight]")
    assert width == 2 * 192 and height == 112  # full side-by-side: two eyes of the source's size

    # And the left-eye view shows one eye at the source's aspect ratio; back to both eyes again
    page.get_by_label("Left eye only").check()
    frame = page.locator(".player")
    assert "one-eye" in (frame.get_attribute("class") or "")
    box = frame.bounding_box()
    assert box is not None and abs(box["width"] / box["height"] - 192 / 112) < 0.05
    page.get_by_label("Side by side (both eyes)").check()
    assert "one-eye" not in (frame.get_attribute("class") or "")


def test_failed_job_shows_its_error_and_cause(page: Any, dashboard_url: str, not_a_video: Path) -> None:
    # Given the stereo form  When a file that is not a video is uploaded
    open_form(page, dashboard_url, "stereo")
    page.get_by_label("File").set_input_files(str(not_a_video))
    page.get_by_role("button", name="Upload and submit").click()
    job_id_of(page)

    # Then the job page shows it failed, with the error's name and its cause
    page.locator("#job-status .badge", has_text="failed").wait_for(timeout=JOB_TIMEOUT_MS)
    error = page.get_by_role("region", name="Error")
    assert error.locator(".error-name").inner_text() == "NotAVideo"
    assert "not a video" in error.locator(".cause").inner_text()
    # And a finished job offers no cancel
    assert page.get_by_role("button", name="Cancel job").is_hidden()


def test_a_4xx_is_shown_next_to_the_field_it_names(
    page: Any, dashboard_url: str, clip: Path, console: Console
) -> None:
    # Given the stereo form with an out-of-range baseline (the API checks it, and answers 400 naming it)
    console.expect(r"status of 400 .*\[.*/jobs\]")
    open_form(page, dashboard_url, "stereo")
    page.get_by_label("File").set_input_files(str(clip))
    page.get_by_label("Baseline").fill("5")

    # When it is sent with the keyboard (Enter in the field submits the form)
    page.get_by_label("Baseline").press("Enter")

    # Then the API's message is shown in an alert and next to the field, which is marked invalid and focused
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "HTTP 400" in alert.inner_text() and "baseline" in alert.inner_text()
    field = page.locator('.field[data-field="baseline"]')
    assert "invalid" in (field.get_attribute("class") or "")
    assert field.locator(".error").is_visible() and "baseline" in field.locator(".error").inner_text()
    assert page.get_by_label("Baseline").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.name") == "baseline"
    # And nothing was uploaded: the page stays on the form
    assert "#/submit/stereo" in page.url


@pytest.mark.parametrize("page", [{"width": 390, "height": 844}], indirect=True)
def test_phone_width_layout_and_keyboard_navigation(page: Any, dashboard_url: str) -> None:
    # Given the dashboard at phone width
    page.goto(f"{dashboard_url}#/jobs?status=completed")
    page.get_by_role("heading", name="Jobs").wait_for()
    page.locator("table.jobs tbody tr").first.wait_for()

    # Then nothing overflows sideways
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # When the keyboard goes back from the page's heading (focused on arrival) to the Backend link, and
    # presses Enter
    assert page.evaluate("document.activeElement.tagName") == "H1"
    for _ in range(8):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.textContent") == "Backend":
            break
    assert page.evaluate("document.activeElement.textContent") == "Backend"
    page.keyboard.press("Enter")

    # Then the backend page is shown, its heading focused for screen readers
    page.get_by_role("heading", name="On-demand backend").wait_for()
    assert page.evaluate("document.activeElement.tagName") == "H1"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_backend_page_starts_and_pings_the_backend(page: Any, dashboard_url: str) -> None:
    # Given the backend page (opening it starts nothing)
    page.goto(f"{dashboard_url}#/backend")
    status = page.locator("#backend-status")
    assert status.inner_text() == ""

    # When Start is pressed  Then the backend's status is shown
    page.get_by_role("button", name="Start").click()
    status.get_by_text(re.compile("^(started|running)$")).wait_for()

    # When Ping is pressed  Then it is kept alive: pinged, still started or running
    page.get_by_role("button", name="Ping").click()
    page.get_by_role("status").get_by_text("Pinged.").wait_for()
    assert re.search(r"Stops in\s+\d+ s without a ping", status.inner_text())


def test_tts_narration_plays_with_its_vtt_subtitles(page: Any, dashboard_url: str, cloud: LocalCloud) -> None:
    workflows = requests.get(cloud.api_url + "/workflows", timeout=10).json()["items"]
    if not any(w["kind"] == "tts" and w["deployed"] for w in workflows):
        pytest.skip("this stack runs no tts workflow")
    # Given the tts form (built from its schema)  When a text is submitted
    open_form(page, dashboard_url, "tts")
    page.get_by_label("Text").fill("Hello there. This is the dashboard speaking.")
    page.get_by_role("button", name="Submit").click()
    job_id_of(page)

    # Then the job completes and its narration has one audio player with the VTT as a subtitle track
    page.locator("#job-status .badge", has_text="completed").wait_for(timeout=JOB_TIMEOUT_MS)
    audio = page.locator(".outputs audio")
    audio.wait_for()
    assert audio.count() == 1
    assert audio.locator("track").get_attribute("kind") == "subtitles"
    cues = wait_until(
        lambda: audio.evaluate(
            "a => a.textTracks[0] && a.textTracks[0].cues ? a.textTracks[0].cues.length : 0"
        ),
        20,
        "the subtitle cues",
    )
    assert cues >= 1
    # And it plays
    audio.evaluate("a => { a.muted = true; return a.play(); }")
    wait_until(lambda: audio.evaluate("a => a.currentTime"), 20, "the audio to play", until=lambda t: t > 0.1)
    page.get_by_role("link", name=re.compile(r"Download .*\.vtt")).wait_for(timeout=JOB_TIMEOUT_MS)
