"""One botocore data loader for the whole test session.

moto resets `boto3.DEFAULT_SESSION` on every `mock_aws` start, so each test's first clients would parse
botocore's JSON models again (~1 s a test). Sharing the loader (and its parsed-model cache) keeps the
per-test cost to creating tables. Import `shared_botocore_loader` into a test module to use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.loaders
import botocore.session
import pytest

_LOADERS: dict[Any, botocore.loaders.Loader] = {}
_original = botocore.session.create_loader


def _cached_create_loader(search_path_string: Any = None) -> botocore.loaders.Loader:
    if search_path_string not in _LOADERS:
        _LOADERS[search_path_string] = _original(search_path_string)
    return _LOADERS[search_path_string]


@pytest.fixture(scope="session", autouse=True)
def shared_botocore_loader() -> Iterator[None]:
    botocore.session.create_loader = _cached_create_loader
    try:
        yield
    finally:
        botocore.session.create_loader = _original
