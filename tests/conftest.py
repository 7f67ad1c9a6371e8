"""What every suite may ask for: the hostile feed server (see tests/feed_server.py).

Events and feed documents come from tests/factories.py; the integration suite's
broker and subprocess helpers live in tests/integration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.feed_server import FeedServer, serve_hostile


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    """The hostile feed server on 127.0.0.1, fresh for each test."""
    async with serve_hostile() as server:
        yield server
