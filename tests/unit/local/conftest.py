"""One local cloud running the fixture app, shared by the tests of this package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storyflow_local import LocalCloud
from tests.unit.local.support import fixture_config


@pytest.fixture(scope="package")
def app_cloud() -> Iterator[LocalCloud]:
    """Given the fixture app (tests/integration/fixtures/app) deployed into a local cloud."""
    with LocalCloud(fixture_config()) as cloud:
        # Every Lambda init (Powertools' Logger binds sys.stdout as it is then) runs in this setup, not while
        # pytest swaps sys.stdout between phases: a function initialised then would log past the cloud's
        # function log, which the tests read.
        cloud.wait_until_warm(120)
        yield cloud
