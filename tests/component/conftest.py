"""A real local HTTP server that misbehaves on request, and a client session; both always closed."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler

FEED_ETAG = '"feed-v1"'
FEED_LAST_MODIFIED = "Tue, 30 Apr 2024 10:00:00 GMT"
FEED_XML = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Local feed</title><link>/</link>
<item><title>Баку и Москва &lt;b&gt;обменялись&lt;/b&gt; нотами</title>
<link>/news/1</link><guid isPermaLink="false">local-1</guid>
<description>&lt;p&gt;Diplomatic notes were exchanged.&lt;/p&gt;</description>
<pubDate>Tue, 30 Apr 2024 09:00:00 GMT</pubDate></item>
<item><title>Second item</title><link>https://elsewhere.example/2</link>
<pubDate>Tue, 30 Apr 2024 08:00:00 GMT</pubDate></item>
</channel></rss>
""".encode()
BOMB_UNCOMPRESSED_BYTES = 50 * 1024 * 1024


def _gzip_of_zeros(size: int) -> bytes:
    # Compressed piecewise so the test itself never holds the 50 MB in memory.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    piece = bytes(1024 * 1024)
    parts = [compressor.compress(piece) for _ in range(size // len(piece))]
    parts.append(compressor.flush())
    return b"".join(parts)


@dataclass
class FeedServer:
    """The running server: where it is and what it was asked."""

    server: TestServer
    # (path, request headers) of every request received, in order.
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


async def _feed(request: web.Request) -> web.Response:
    if request.headers.get("If-None-Match") == FEED_ETAG:
        return web.Response(status=304, headers={"ETag": FEED_ETAG})
    return web.Response(
        body=FEED_XML,
        content_type="application/rss+xml",
        charset="utf-8",
        headers={"ETag": FEED_ETAG, "Last-Modified": FEED_LAST_MODIFIED},
    )


async def _status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="nope")


async def _redirect(request: web.Request) -> web.Response:
    # Relative Location, as many servers send: resolved against the hop's URL.
    raise web.HTTPFound("/feed.xml")


async def _redirect_loop(request: web.Request) -> web.Response:
    hop = int(request.match_info["hop"])
    raise web.HTTPFound(f"/loop/{hop + 1}")


async def _redirect_to_file(request: web.Request) -> web.Response:
    raise web.HTTPFound("file:///etc/passwd")


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"<rss>" + b" " * (2 * 1024 * 1024), content_type="application/xml")


async def _endless(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/xml"})
    await response.prepare(request)
    try:
        while True:
            await response.write(b"<item>" + b"x" * 65536 + b"</item>")
    except (ConnectionError, asyncio.CancelledError):
        pass  # the client hung up, as it should
    return response


async def _trickle(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/xml"})
    await response.prepare(request)
    try:
        while True:
            await response.write(b" ")
            await asyncio.sleep(0.05)
    except (ConnectionError, asyncio.CancelledError):
        pass
    return response


def _bomb_handler(bomb: bytes) -> Handler:
    async def bomb_response(request: web.Request) -> web.Response:
        return web.Response(
            body=bomb,
            headers={"Content-Type": "application/xml", "Content-Encoding": "gzip"},
        )

    return bomb_response


@pytest.fixture(scope="session")
def gzip_bomb() -> bytes:
    return _gzip_of_zeros(BOMB_UNCOMPRESSED_BYTES)


@pytest.fixture
async def feed_server(gzip_bomb: bytes) -> AsyncIterator[FeedServer]:
    requests: list[tuple[str, dict[str, str]]] = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        requests.append((request.path, dict(request.headers)))
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.router.add_get("/feed.xml", _feed)
    app.router.add_get("/status/{code}", _status)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/loop/{hop}", _redirect_loop)
    app.router.add_get("/redirect-to-file", _redirect_to_file)
    app.router.add_get("/big", _big)
    app.router.add_get("/endless", _endless)
    app.router.add_get("/trickle", _trickle)
    app.router.add_get("/bomb", _bomb_handler(gzip_bomb))
    server = TestServer(app, host="127.0.0.1")
    async with server:
        yield FeedServer(server, requests)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def closed_port() -> int:
    """A local port with nothing listening on it."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
