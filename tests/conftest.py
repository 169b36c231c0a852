from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import Server, running_server


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """One live server with default settings, shared by the read-only end-to-end tests."""
    with running_server() as s:
        yield s
