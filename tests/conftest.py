from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fastmock.config import Config
from fastmock.frames import CLOCK, Clock
from fastmock.protocol_h11 import H11Protocol
from fastmock.protocol_httptools import HttpToolsProtocol
from helpers import Make, Rig, Server, running_server


@pytest.fixture(scope="session", params=["h11", "httptools"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A live server with default settings per HTTP handler, shared by read-only tests."""
    with running_server("--http", request.param) as s:
        assert f"({request.param})" in s.startup_line
        yield s


@pytest.fixture(params=[H11Protocol, HttpToolsProtocol], ids=["h11", "httptools"])
def make(request: pytest.FixtureRequest) -> Make:
    """Build a Rig for each HTTP handler: every test that takes it runs against both."""

    def build(config: Config | None = None, **kw: object) -> Rig:
        return Rig(config or Config(), handler=request.param, **kw)  # type: ignore[arg-type]

    return build


@pytest.fixture
def clock() -> Iterator[Clock]:
    """The server's clock, for a test to move (``clock.tick(unix)``); put back afterwards."""
    saved = (CLOCK.date, CLOCK.unix, CLOCK.unix_bytes)
    yield CLOCK
    CLOCK.date, CLOCK.unix, CLOCK.unix_bytes = saved
