"""Browser tests: the built dashboard (web/dist, `make web`) at /ui on the local cloud's API, driven by
Playwright in Debian's Chromium (/usr/bin/chromium; no browser download), headless.

The local cloud is the session's: the one tests/integration started, when it runs in the same session (one
LocalCloud per process; these tests are ordered after it), else one started here. Every test gets a fresh
browser context and page; it fails on any console error or uncaught page error (a test that expects one,
such as the 400 of a refused submission, says so with `console.expect`), and leaves a screenshot under
test-artifacts/browser/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from storyflow_local import LocalCloud, LocalCloudConfig
from storyflow_local import cloud as cloud_module
from tests.support.target import STACK_ENV

ROOT = Path(__file__).resolve().parents[2]
BROWSER_DIR = Path(__file__).resolve().parent
DIST = ROOT / "web" / "dist"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("STORYFLOW_CHROMIUM", "/usr/bin/chromium")
# The stack parameters of a local cloud started here: stories at 240p with 1 s clips (template defaults: 720p,
# 121 frames), as tests/integration/conftest.py STACK_PARAMETERS runs them (a shared cloud has them already).
STACK_PARAMETERS = {"StoryShortSide": "240", "StoryClipFrames": "25"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Browser tests last (after tests/integration, whose local cloud they share; never while unit tests
    mock AWS in-process)."""
    browser = [item for item in items if BROWSER_DIR in Path(str(item.path)).parents]
    if browser:
        chosen = set(browser)
        items[:] = [item for item in items if item not in chosen] + browser
        for item in browser:
            item.add_marker(pytest.mark.browser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the dashboard in headless Chromium (tests/browser)")


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """Given the local cloud: the session's running one, or one started for these tests."""
    if os.environ.get(STACK_ENV, "").strip():
        pytest.skip(f"{STACK_ENV} is set: the dashboard tests need the local cloud (no sign-in)")
    if not (DIST / "index.html").is_file():
        pytest.fail(f"{DIST}/index.html is missing: build the dashboard with `make web`", pytrace=False)
    running = cloud_module.active()
    if running is not None:
        yield running
        return
    state = tmp_path_factory.mktemp("browser-cloud") / "local.json"
    config = LocalCloudConfig(
        template=ROOT / "template.yaml", state_file=state, parameters=dict(STACK_PARAMETERS)
    )
    with LocalCloud(config) as started:
        # Every Lambda init (Powertools' Logger binds sys.stdout as it is then) runs in this setup, not while
        # pytest swaps sys.stdout between phases: a function initialised then would log past the cloud's
        # function log, which the tests read.
        started.wait_until_warm(120)
        yield started


@pytest.fixture(scope="session")
def dashboard_url(cloud: LocalCloud) -> str:
    """http://127.0.0.1:<api port>/ui/"""
    origin = cloud.api_url.rsplit("/", 1)[0]
    return f"{origin}/ui/"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`; .ci/run does)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Console:
    """Console errors and uncaught errors of one page; `expect` allows one known, expected error."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def expect(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [error for error in self.errors if not any(p.search(error) for p in self.allowed)]


@pytest.fixture(scope="session", autouse=True)
def _fresh_artifacts() -> None:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Any, console: Console, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page (own context: storage, cookies) that records console errors; a screenshot at the end."""
    viewport = getattr(request, "param", None) or {"width": 1280, "height": 900}
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(15_000)
    opened = context.new_page()

    def on_console(message: Any) -> None:
        if message.type == "error":
            where = message.location.get("url", "") if message.location else ""
            console.errors.append(f"console.error: {message.text} [{where}]")

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: console.errors.append(f"pageerror: {error}"))
    yield opened
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    try:
        opened.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    finally:
        context.close()
    unexpected = console.unexpected()
    assert not unexpected, "the browser logged errors:\n" + "\n".join(unexpected)
