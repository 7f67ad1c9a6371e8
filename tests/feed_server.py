"""A real local HTTP server that misbehaves on request, always closed.

`serve_hostile()` is the feed server of the collector tests, component and
integration alike (tests/conftest.py starts one per test as `feed_server`):
redirects into loopback and private ranges, redirect loops, a 1 GiB gzip or
deflate bomb made on the fly, a body that never ends, a server that trickles,
an XML entity bomb, 429/503 with Retry-After, conditional GET, hostile markup,
and documents a test rewrites between polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler

from monitor.collect.guard import NetworkPolicy
from monitor.web import serving

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
# What the bombs would inflate to: 1 GiB of zeros, compressed as they are sent,
# so that nothing of that size is ever stored or built.
BOMB_UNCOMPRESSED_BYTES = 1024**3
_MIB = bytes(1024 * 1024)
# Loopback as the tests allow it: the feed server's one address and nothing else.
LOOPBACK_ONLY = NetworkPolicy.allowing("127.0.0.1/32")

ENTITY_BOMB = (
    '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY lol0 "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    + f'<!ENTITY big "{"x" * 50_000}">]>'
    + '<rss version="2.0"><channel><title>Bomb</title>'
    + "<item><guid>bomb-1</guid><title>&lol9;</title><description>"
    + "&big;" * 20_000
    + "</description></item>"
    + "<item><guid>bomb-2</guid><title>An ordinary item after the bomb</title></item>"
    + "</channel></rss>"
).encode()

HOSTILE_MARKUP = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Hostile markup</title>
<item><guid>x-1</guid><title>Baku &lt;script&gt;alert(1)&lt;/script&gt;protests</title>
<link>javascript:alert(document.cookie)</link>
<description>&lt;img src=x onerror="alert(1)"&gt;&lt;a href="javascript:alert(2)"&gt;Read&lt;/a&gt;
&lt;script&gt;steal()&lt;/script&gt;&lt;p onclick="x()"&gt;The note was delivered.&lt;/p&gt;
</description></item></channel></rss>
"""


@dataclass
class FeedServer:
    """The running server: where it is, what it was asked, what it serves."""

    server: TestServer
    # (path, request headers) of every request received, in order.
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    # name → document served at /doc/{name} with an ETag of its content; tests
    # change them between polls.
    documents: dict[str, bytes] = field(default_factory=dict)
    # name → the Content-Type a document is served with, when not RSS's.
    content_types: dict[str, str] = field(default_factory=dict)
    # Compressed bytes each bomb response got out before the client hung up.
    bomb_bytes_sent: list[int] = field(default_factory=list)
    # /slow requests being answered right now, and the most there ever were at once.
    in_flight: int = 0
    most_in_flight: int = 0

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    def serve(self, name: str, body: bytes, content_type: str = "application/rss+xml") -> str:
        """Serve `body` at /doc/{name} as `content_type` (the header as given, charset and
        all, and no Content-Encoding whatever the bytes are); returns its URL."""
        self.documents[name] = body
        self.content_types[name] = content_type
        return self.url(f"/doc/{name}")

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


SERVER = web.AppKey("server", FeedServer)


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


async def _redirect_to(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query["to"])


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
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):  # the client hung up
        while True:
            await response.write(b"<item>" + b"x" * 65536 + b"</item>")
    return response


async def _trickle(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/xml"})
    await response.prepare(request)
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):  # the client hung up
        while True:
            await response.write(b" ")
            await asyncio.sleep(0.05)
    return response


async def _bomb(request: web.Request) -> web.StreamResponse:
    """1 GiB of zeros, gzip- or deflate-compressed on the fly, for as long as the client reads.

    /bomb/undeclared-gzip sends the gzip bytes without a Content-Encoding header:
    the client's HTTP library does not inflate it, the collector does. `?mib=N`
    makes a smaller bomb (N MiB of zeros), whose compressed bytes all fit in a
    small body cap, so that the cap is met while inflating.
    """
    encoding = request.match_info["encoding"]
    wbits = zlib.MAX_WBITS if encoding == "deflate" else 16 + zlib.MAX_WBITS
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    headers = {"Content-Type": "application/xml"}
    if encoding in ("gzip", "deflate"):
        headers["Content-Encoding"] = encoding
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    sent = 0
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):  # the client hung up
        for _ in range(int(request.query.get("mib", BOMB_UNCOMPRESSED_BYTES // len(_MIB)))):
            chunk = compressor.compress(_MIB)
            sent += len(chunk)
            await response.write(chunk)
            # Let the client (in this same event loop) read, and hang up.
            await asyncio.sleep(0)
        await response.write(compressor.flush())
    request.app[SERVER].bomb_bytes_sent.append(sent)
    return response


async def _entity_bomb(request: web.Request) -> web.Response:
    return web.Response(body=ENTITY_BOMB, content_type="application/rss+xml")


async def _hostile_markup(request: web.Request) -> web.Response:
    return web.Response(body=HOSTILE_MARKUP, content_type="application/rss+xml")


async def _too_many(request: web.Request) -> web.Response:
    return web.Response(
        status=int(request.query.get("status", "429")),
        headers={"Retry-After": request.query["retry"]},
        text="slow down",
    )


async def _slow(request: web.Request) -> web.Response:
    """A feed that takes its time to answer, so that concurrent requests overlap."""
    server = request.app[SERVER]
    server.in_flight += 1
    server.most_in_flight = max(server.most_in_flight, server.in_flight)
    try:
        await asyncio.sleep(float(request.query.get("seconds", "0.1")))
    finally:
        server.in_flight -= 1
    return web.Response(body=FEED_XML, content_type="application/rss+xml")


async def _document(request: web.Request) -> web.Response:
    server, name = request.app[SERVER], request.match_info["name"]
    body = server.documents.get(name)
    if body is None:
        raise web.HTTPNotFound()
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    content_type = server.content_types.get(name, "application/rss+xml")
    return web.Response(body=body, headers={"ETag": etag, "Content-Type": content_type})


@asynccontextmanager
async def serve_hostile(host: str = "127.0.0.1") -> AsyncIterator[FeedServer]:
    """The hostile feed server on `host`, on a free port, closed on exit."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        request.app[SERVER].requests.append((request.path, dict(request.headers)))
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.router.add_get("/feed.xml", _feed)
    app.router.add_get("/status/{code}", _status)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/redirect-to", _redirect_to)
    app.router.add_get("/loop/{hop}", _redirect_loop)
    app.router.add_get("/redirect-to-file", _redirect_to_file)
    app.router.add_get("/big", _big)
    app.router.add_get("/endless", _endless)
    app.router.add_get("/trickle", _trickle)
    app.router.add_get("/bomb/{encoding}", _bomb)
    app.router.add_get("/entity-bomb", _entity_bomb)
    app.router.add_get("/hostile-markup", _hostile_markup)
    app.router.add_get("/too-many", _too_many)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/doc/{name}", _document)
    server = TestServer(app, host=host)
    feed_server = FeedServer(server)
    app[SERVER] = feed_server
    async with server:
        yield feed_server


@asynccontextmanager
async def serve_files(
    root: Path, files: Iterable[Path], content_type_of: Callable[[Path], str]
) -> AsyncIterator[str]:
    """Serve `files` (under `root`) at their relative paths, each with the Content-Type
    `content_type_of` gives it, as a static web server would; yields the base URL."""
    served = {path.relative_to(root).as_posix(): path for path in files}

    async def file(request: web.Request) -> web.Response:
        path = served.get(request.match_info["path"])
        if path is None:
            raise web.HTTPNotFound()
        return web.Response(body=path.read_bytes(), headers={"Content-Type": content_type_of(path)})

    app = web.Application()
    app.router.add_get("/{path:.+}", file)
    async with serving(app) as port:
        yield f"http://127.0.0.1:{port}"
