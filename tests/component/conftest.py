"""The component tests' sessions, and a second feed server that stands for the inside."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from monitor.collect.guard import guarded_session
from tests.feed_server import LOOPBACK_ONLY, FeedServer, serve_hostile


@pytest.fixture
async def inside() -> AsyncIterator[FeedServer]:
    """A server on 127.0.0.2: what a feed must not reach (it stands for the private network)."""
    async with serve_hostile("127.0.0.2") as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def guarded() -> AsyncIterator[aiohttp.ClientSession]:
    """The collector's own kind of session, allowing only the feed server's address."""
    async with guarded_session(LOOPBACK_ONLY) as client:
        yield client


@pytest.fixture
def closed_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
