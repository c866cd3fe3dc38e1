"""The story workflow in the dashboard, against the local cloud (stories at 240p with 1 s clips: conftest.py
STACK_PARAMETERS): scene rows in the generated form, the story's Scenes with their child jobs, the way back
from a child to its story, the composed video, and a scene regenerated to a new revision.

Given/When/Then in each test; every wait is on something the page shows, never a fixed sleep.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from storyflow_local import LocalCloud
from tests.browser.conftest import Console
from tests.browser.test_dashboard import job_id_of, open_form, play_output_video

STORY_TIMEOUT_MS = 300_000
SCENES = [
    {"text": "A fox dreams of the sky.", "visual_prompt": "a red fox looking up at clouds"},
    {"text": "One morning, it leaps into the clouds."},
]
NEW_TEXT = "At dawn the fox drifts home on a cloud."
# Records every status the job page shows (#job-status), in order.
RECORD_STATUSES = """() => {
  window.__statuses = [];
  const target = document.getElementById("job-status");
  const note = () => {
    const badge = target.querySelector(".badge");
    const text = badge ? badge.textContent : "";
    if (text && window.__statuses[window.__statuses.length - 1] !== text) window.__statuses.push(text);
  };
  note();
  new MutationObserver(note).observe(target, { subtree: true, childList: true, characterData: true });
}"""


@pytest.fixture(scope="module", autouse=True)
def story_deployed(cloud: LocalCloud) -> None:
    workflows = requests.get(cloud.api_url + "/workflows", timeout=10).json()["items"]
    if not any(w["kind"] == "story" and w["deployed"] for w in workflows):
        pytest.skip("this stack runs no story workflow")


@pytest.fixture(scope="module")
def stories(cloud: LocalCloud) -> dict[str, Any]:
    """What the tests of this module leave behind: the completed story's id and its first children."""
    return {}


@pytest.fixture
def story_id(stories: dict[str, Any]) -> str:
    """The id of the story the submission test saw completed (the tests after it skip without one)."""
    story_id = stories.get("completed")
    if story_id is None:
        pytest.skip("needs the completed story of the submission test")
    return str(story_id)


def scene_row(page: Any, number: int) -> Any:
    return page.get_by_role("group", name=f"Scene {number}", exact=True)


def summary_value(page: Any, term: str) -> str:
    return str(summary_cell(page, term).inner_text())


def summary_cell(page: Any, term: str) -> Any:
    return page.locator(
        f'xpath=//dl[contains(@class, "job-summary")]/dt[.="{term}"]/following-sibling::dd[1]'
    )


def open_regenerate(page: Any, number: int, keyboard: bool = False) -> None:
    """Unfold scene `number`'s Regenerate form (a <details>), by click or with the keyboard."""
    summary = page.locator(f'.scene[data-scene="{number - 1}"] details.regenerate > summary')
    if keyboard:
        summary.focus()
        page.keyboard.press("Enter")
    else:
        summary.click()
    page.get_by_role("group", name=f"Regenerate scene {number}").wait_for()


def children_of(page: Any, scene: int) -> dict[str, str]:
    """{kind: job id} of a scene's child links on the story page."""
    links = page.locator(f'.scene[data-scene="{scene}"] a.child-link')
    found: dict[str, str] = {}
    for index in range(links.count()):
        kind, job_id = links.nth(index).inner_text().split(" ", 1)
        found[kind] = job_id
    return found


def test_a_two_scene_story_submitted_through_the_form_completes_with_its_scenes_and_child_links(
    page: Any, dashboard_url: str, stories: dict[str, Any]
) -> None:
    # Given the story form: one scene row to start with, which cannot be removed
    open_form(page, dashboard_url, "story")
    scenes = page.get_by_role("group", name="Scenes", exact=True)
    assert scene_row(page, 1).is_visible() and scene_row(page, 2).count() == 0
    assert page.get_by_role("button", name="Remove scene 1").is_disabled()

    # When three scenes are typed in (Add scene puts the keyboard in the new row's text) and the middle one
    # is removed
    scene_row(page, 1).get_by_label("Text").fill(SCENES[0]["text"])
    scene_row(page, 1).get_by_label("Visual Prompt").fill(SCENES[0]["visual_prompt"])
    for text in ("A scene that is removed again.", SCENES[1]["text"]):
        scenes.get_by_role("button", name="Add scene").click()
        page.keyboard.type(text)
    assert scene_row(page, 3).get_by_label("Text").input_value() == SCENES[1]["text"]
    page.get_by_role("button", name="Remove scene 2").click()

    # Then the rows are renumbered: the last scene is scene 2 now, named scenes.1 for the API
    assert scene_row(page, 3).count() == 0
    second = scene_row(page, 2)
    assert second.get_by_label("Text").input_value() == SCENES[1]["text"]
    assert second.locator(".field").first.get_attribute("data-field") == "scenes.1.text"
    assert second.get_by_label("Text").get_attribute("name") == "scenes.1.text"

    # When the form is sent
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/jobs")) as sent:
        page.get_by_role("button", name="Submit").click()
    body = json.loads(sent.value.post_data or "{}")
    assert body["kind"] == "story" and body["scenes"] == SCENES and "prompt" not in body
    story_id = job_id_of(page)

    # Then the job page follows the story to completed, counting scenes
    page.locator("#job-status .badge", has_text="completed").wait_for(timeout=STORY_TIMEOUT_MS)
    assert page.locator("#job-progress-text").inner_text() == "2 of 2 scenes"
    assert summary_value(page, "Revision") == "0"
    # and its stages up to composing done: stereo, not asked for, is shown skipped
    assert page.locator(".stage.done").all_inner_texts() == ["planning", "scenes", "composing"]
    assert page.locator(".stage.skipped").all_inner_texts() == ["stereo"]

    # And its Scenes list each scene's text with its tts and video jobs, linked, each shown completed
    region = page.get_by_role("region", name="Scenes")
    assert region.locator(".scene-text").all_inner_texts() == [scene["text"] for scene in SCENES]
    for scene in (0, 1):
        item = region.locator(f'.scene[data-scene="{scene}"]')
        for kind in ("tts", "video"):
            link = item.get_by_role("link", name=re.compile(f"^{kind} "))
            assert re.fullmatch(r"#/jobs/[a-z0-9-]+", link.get_attribute("href") or "")
            child = item.locator("ul.children li").filter(
                has=page.get_by_role("link", name=re.compile(f"^{kind} "))
            )
            child.locator(".badge", has_text="completed").wait_for()
    stories["completed"] = story_id
    stories["children"] = [children_of(page, 0), children_of(page, 1)]


def test_the_composed_story_plays_and_downloads(page: Any, dashboard_url: str, story_id: str) -> None:
    # Given the completed story's page  When its video is played
    video = play_output_video(page, dashboard_url, story_id)
    # Then it plays at 16:9 with a 240-pixel short side (the local stack's StoryShortSide)
    width, height = video.evaluate("v => [v.videoWidth, v.videoHeight]")
    assert height == 240 and abs(width / height - 16 / 9) < 0.02
    # And its download link gives the MP4 itself
    download = page.get_by_role("link", name="Download final.mp4")
    assert download.get_attribute("download") == "final.mp4"
    got = requests.get(download.get_attribute("href") or "", timeout=30)
    assert got.status_code == 200 and got.content[4:8] == b"ftyp"


def test_a_child_job_links_back_to_its_story(
    page: Any, dashboard_url: str, stories: dict[str, Any], story_id: str
) -> None:
    # Given the story's page
    page.goto(f"{dashboard_url}#/jobs/{story_id}")
    region = page.get_by_role("region", name="Scenes")

    # When the second scene's tts job is followed (with the keyboard)
    tts_id = stories["children"][1]["tts"]
    region.get_by_role("link", name=f"tts {tts_id}").focus()
    page.keyboard.press("Enter")

    # Then that job's page shows it completed, with a link to its story and no Scenes of its own
    page.wait_for_url(re.compile(f"#/jobs/{tts_id}$"))
    page.locator("#job-status .badge", has_text="completed").wait_for()
    assert page.get_by_role("heading", level=1).inner_text() == f"Job {tts_id}"
    page.locator(".outputs audio").wait_for()
    assert page.locator(".outputs audio").count() == 1
    assert page.get_by_role("region", name="Scenes").count() == 0

    # When the parent link is followed  Then the story's page is back, with its scenes
    page.get_by_role("link", name=f"Parent story {story_id}").click()
    page.wait_for_url(re.compile(f"#/jobs/{story_id}$"))
    page.get_by_role("region", name="Scenes").locator(".scene").nth(1).wait_for()
    assert page.get_by_role("link", name=re.compile("^Parent story")).count() == 0


def test_a_refused_regenerate_is_shown_next_to_its_field(
    page: Any, dashboard_url: str, story_id: str, console: Console
) -> None:
    # Given the completed story's page, and a new narration over the API's 4,000 characters
    console.expect(r"status of 400 .*\[.*/regenerate\]")
    page.goto(f"{dashboard_url}#/jobs/{story_id}")
    open_regenerate(page, 1)
    form = page.get_by_role("group", name="Regenerate scene 1")
    form.get_by_label("New text").fill("word " * 801)

    # When it is sent
    form.get_by_role("button", name="Regenerate scene 1").click()

    # Then the API's 400 is shown in an alert and on the field it names, which is focused
    alert = form.get_by_role("alert")
    alert.wait_for()
    assert "HTTP 400" in alert.inner_text() and "text" in alert.inner_text()
    assert form.get_by_label("New text").get_attribute("aria-invalid") == "true"
    assert form.locator('.field[data-field="text"] .error').is_visible()
    assert page.evaluate("document.activeElement.name") == "text"
    # And the story was not reopened
    assert summary_value(page, "Revision") == "0"
    assert page.locator("#job-status .badge").inner_text() == "completed"


def test_regenerating_a_scene_follows_the_story_to_its_next_revision(
    page: Any, dashboard_url: str, stories: dict[str, Any], story_id: str
) -> None:
    # Given the completed story's page, recording the statuses it shows
    page.goto(f"{dashboard_url}#/jobs/{story_id}")
    page.locator("#job-status .badge", has_text="completed").wait_for()
    page.evaluate(RECORD_STATUSES)

    # When scene 2's Regenerate is opened (with the keyboard) and sent with a new text
    open_regenerate(page, 2, keyboard=True)
    form = page.get_by_role("group", name="Regenerate scene 2")
    form.get_by_label("New text").fill(NEW_TEXT)
    form.get_by_role("button", name="Regenerate scene 2").click()

    # Then the page says so and follows the story again, through its new revision to completed
    page.get_by_role("status").filter(has_text="Scene 2 is being regenerated").wait_for()
    summary_cell(page, "Revision").filter(has_text=re.compile("^1$")).wait_for()
    page.get_by_role("status").filter(has_text="Revision 1 is completed.").wait_for(timeout=STORY_TIMEOUT_MS)
    assert page.locator("#job-status .badge").inner_text() == "completed"
    statuses: list[str] = page.evaluate("window.__statuses")
    assert statuses[0] == "completed" and statuses[-1] == "completed"
    assert {"queued", "running"} & set(statuses[1:-1]), statuses

    # And scene 2 has its new text and new children; scene 1 kept its own
    region = page.get_by_role("region", name="Scenes")
    region.locator('.scene[data-scene="1"] .scene-text', has_text=NEW_TEXT).wait_for()
    assert children_of(page, 0) == stories["children"][0]
    second = children_of(page, 1)
    assert set(second) == {"tts", "video"}
    assert not set(second.values()) & set(stories["children"][1].values())
    for job_id in second.values():
        region.locator(f'li[data-job-id="{job_id}"] .badge', has_text="completed").wait_for()
    # And the new revision's video is offered again
    page.get_by_role("link", name="Download final.mp4").wait_for()
    open_regenerate(page, 2)
    assert page.get_by_role("group", name="Regenerate scene 2").is_visible()


def test_a_refused_scene_is_marked_in_its_row(page: Any, dashboard_url: str, console: Console) -> None:
    # Given the story form with a second scene that has a visual prompt but no text
    console.expect(r"status of 400 .*\[.*/jobs\]")
    open_form(page, dashboard_url, "story")
    scene_row(page, 1).get_by_label("Text").fill("A complete scene.")
    page.get_by_role("button", name="Add scene").click()
    scene_row(page, 2).get_by_label("Visual Prompt").fill("a clip without narration")

    # When it is sent
    page.get_by_role("button", name="Submit").click()

    # Then the API's 400 names scenes.1.text, and scene 2's text is marked and focused
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "HTTP 400" in alert.inner_text() and "scenes.1.text" in alert.inner_text()
    text = scene_row(page, 2).get_by_label("Text")
    assert text.get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.name") == "scenes.1.text"
    assert scene_row(page, 1).get_by_label("Text").get_attribute("aria-invalid") is None
    assert "#/submit/story" in page.url


def test_a_story_from_a_prompt_sends_no_scenes_and_can_be_cancelled(page: Any, dashboard_url: str) -> None:
    # Given the story form with a prompt and its one scene row left empty
    open_form(page, dashboard_url, "story")
    page.get_by_label("Prompt", exact=True).fill("a lighthouse keeper who befriends a whale")

    # When it is sent
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/jobs")) as sent:
        page.get_by_role("button", name="Submit").click()

    # Then the request has the prompt and no scenes, and the story is accepted
    body = json.loads(sent.value.post_data or "{}")
    assert body["prompt"] == "a lighthouse keeper who befriends a whale" and "scenes" not in body
    job_id_of(page)
    # And cancelling it from its page stops it (its children with it)
    page.get_by_role("button", name="Cancel job").click()
    page.locator("#job-status .badge", has_text="cancelled").wait_for(timeout=60_000)
    assert page.get_by_role("button", name="Cancel job").is_hidden()
