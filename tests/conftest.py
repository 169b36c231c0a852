from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import Server, running_server


@pytest.fixture(scope="session", params=["h11", "httptools"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A live server with default settings per HTTP handler, shared by read-only tests."""
    with running_server("--http", request.param) as s:
        assert f"({request.param})" in s.startup_line
        yield s
