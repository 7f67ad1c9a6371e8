"""Fetch one feed over HTTP, safely: bounded in time and size, http(s) only, failures as data.

Every way a fetch can go wrong comes back as a FetchResult with `error` set,
never as an exception, so one bad feed cannot stop a collector that polls many.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urljoin, urlsplit

import aiohttp

from monitor.collect.catalogue import ALLOWED_SCHEMES
from monitor.collect.guard import refusal_of

DEFAULT_USER_AGENT = (
    "baku-moscow-monitor/0.1 (+https://github.com/baku-moscow-monitor/baku-moscow-monitor)"
)
# Feeds are read in pieces this size so that the size cap is checked as bytes
# arrive, not after a whole (possibly endless) body is in memory.
_CHUNK_BYTES = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)

FetchStatus = Literal["ok", "not_modified", "error"]

# Asked before each hop (the first request and every redirect target) is
# requested: returns why the URL is refused, or None to let it through. This is
# where a policy on hosts can plug in. The address check lives in the session's
# connector (monitor.collect.guard), since only it sees the address actually
# connected to, after DNS and on every hop.
HopCheck = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True)
class FetchLimits:
    """How long and how much one fetch may take."""

    total_timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    # Counted after decompression: what matters is what lands in memory.
    max_body_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT

    def __post_init__(self) -> None:
        if self.total_timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must not be negative")


@dataclass(frozen=True)
class CacheValidators:
    """What the server said identifies this version of the feed, for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None

    def request_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers

    def __bool__(self) -> bool:
        return bool(self.etag or self.last_modified)


@dataclass(frozen=True)
class FetchResult:
    """What one fetch gave: a body, "not modified", or why it failed."""

    url: str  # the URL finally read, after redirects
    http_status: int | None = None
    body: bytes = b""
    # Header names in lower case; a repeated header keeps its last value.
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    # Bytes received (after decompression), also when the body was cut off.
    bytes_read: int = 0
    redirects: int = 0

    @property
    def status(self) -> FetchStatus:
        if self.error is not None:
            return "error"
        if self.http_status == 304:
            return "not_modified"
        return "ok"

    @property
    def validators(self) -> CacheValidators | None:
        if self.etag or self.last_modified:
            return CacheValidators(etag=self.etag, last_modified=self.last_modified)
        return None


@dataclass
class _Progress:
    """How far a fetch got, so that a timeout or error can still report it."""

    url: str
    hop: int = 0
    http_status: int | None = None
    bytes_read: int = 0

    def failed(self, error: str, headers: dict[str, str] | None = None) -> FetchResult:
        return FetchResult(
            url=self.url,
            http_status=self.http_status,
            headers=headers or {},
            error=error,
            bytes_read=self.bytes_read,
            redirects=self.hop,
        )


def _scheme_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError as error:
        return f"invalid url {url!r}: {error}"
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        return f"refused url scheme {parts.scheme or 'missing'!r} (only http and https): {url}"
    if not parts.hostname:
        return f"url has no host: {url}"
    return None


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def _read_capped(
    response: aiohttp.ClientResponse, cap: int, progress: _Progress
) -> bytes | None:
    """The body, or None once it grows past `cap` bytes."""
    body = bytearray()
    # aiohttp decompresses as it reads, in bounded steps, so a gzip bomb grows
    # this buffer one chunk at a time and is cut at the cap like any long body.
    async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
        body.extend(chunk)
        progress.bytes_read = len(body)
        if len(body) > cap:
            return None
    return bytes(body)


def _inflated(body: bytes, cap: int) -> bytes | None:
    """A gzip body that came without Content-Encoding, inflated; None once past `cap`.

    Inflated in steps of bounded output, so a gzip bomb is cut at the cap like a
    declared one. A stream cut short gives what it holds so far.
    """
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    inflated = bytearray()
    pending = body
    while True:
        piece = inflater.decompress(pending, _CHUNK_BYTES)
        inflated.extend(piece)
        if len(inflated) > cap:
            return None
        pending = inflater.unconsumed_tail
        if not piece or inflater.eof:
            return bytes(inflated)


async def _fetch(
    session: aiohttp.ClientSession,
    progress: _Progress,
    limits: FetchLimits,
    validators: CacheValidators | None,
    hop_check: HopCheck | None,
) -> FetchResult:
    request_headers = {"User-Agent": limits.user_agent, "Accept": _ACCEPT}
    if validators:
        request_headers.update(validators.request_headers())
    # The overall deadline is enforced around the whole fetch; this only bounds
    # each connection attempt, so an unreachable host fails fast.
    timeout = aiohttp.ClientTimeout(
        total=None, connect=limits.connect_timeout_s, sock_connect=limits.connect_timeout_s
    )
    for hop in range(limits.max_redirects + 1):
        progress.hop = hop
        problem = _scheme_problem(progress.url)
        if problem is None and hop_check is not None:
            problem = await hop_check(progress.url)
        if problem is not None:
            return progress.failed(problem)
        async with session.get(
            progress.url, headers=request_headers, allow_redirects=False, timeout=timeout
        ) as response:
            progress.http_status = response.status
            headers = {name.lower(): value for name, value in response.headers.items()}
            if response.status in _REDIRECT_STATUSES:
                location = response.headers.get("Location")
                if not location:
                    return progress.failed(
                        f"HTTP {response.status} redirect without a Location header", headers
                    )
                progress.url = urljoin(progress.url, location)
                continue
            if response.status == 304:
                # A 304 may omit the validators; the ones we sent are still current.
                previous = validators or CacheValidators()
                return FetchResult(
                    url=progress.url,
                    http_status=304,
                    headers=headers,
                    etag=response.headers.get("ETag") or previous.etag,
                    last_modified=response.headers.get("Last-Modified") or previous.last_modified,
                    redirects=hop,
                )
            if not 200 <= response.status < 300:
                reason = f" {response.reason}" if response.reason else ""
                return progress.failed(f"HTTP {response.status}{reason}", headers)
            body = await _read_capped(response, limits.max_body_bytes, progress)
            if body is None:
                return progress.failed(f"body exceeds {limits.max_body_bytes} bytes", headers)
            if body.startswith(_GZIP_MAGIC):
                # Compressed, but not said so (a .xml.gz served as it is, or gzip
                # twice): aiohttp did not inflate it, so inflate it here, capped alike.
                try:
                    inflated = _inflated(body, limits.max_body_bytes)
                except zlib.error as error:
                    return progress.failed(
                        f"gzip-compressed body (no Content-Encoding) that does not inflate:"
                        f" {error}",
                        headers,
                    )
                if inflated is None:
                    progress.bytes_read = limits.max_body_bytes + 1
                    return progress.failed(
                        f"body exceeds {limits.max_body_bytes} bytes once inflated"
                        " (gzip-compressed, no Content-Encoding)",
                        headers,
                    )
                body = inflated
            return FetchResult(
                url=progress.url,
                http_status=response.status,
                body=body,
                headers=headers,
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
                bytes_read=len(body),
                redirects=hop,
            )
    progress.hop = limits.max_redirects + 1
    return progress.failed(f"too many redirects (more than {limits.max_redirects})")


async def fetch_feed(
    session: aiohttp.ClientSession,
    url: str,
    limits: FetchLimits,
    validators: CacheValidators | None = None,
    *,
    hop_check: HopCheck | None = None,
) -> FetchResult:
    """GET one feed, following redirects by hand so that every hop is checked.

    Sends If-None-Match / If-Modified-Since from `validators`; a 304 comes back
    with status "not_modified". Never raises for anything the network or the
    server does: timeouts, refused connections, oversized bodies, redirect loops,
    error statuses and refused schemes all come back as a result with `error`.
    """
    progress = _Progress(url=url)
    try:
        async with asyncio.timeout(limits.total_timeout_s):
            return await _fetch(session, progress, limits, validators, hop_check)
    except TimeoutError as error:
        if isinstance(error, aiohttp.ServerTimeoutError):
            return progress.failed(f"connect timed out after {limits.connect_timeout_s:g} s")
        return progress.failed(f"timed out after {limits.total_timeout_s:g} s")
    except aiohttp.ClientConnectorError as error:
        refused = refusal_of(error)
        if refused is not None:
            return progress.failed(refused)
        return progress.failed(f"cannot connect: {error}")
    except aiohttp.ClientError as error:
        return progress.failed(refusal_of(error) or f"HTTP client error: {_describe(error)}")
    except (OSError, ValueError, UnicodeError) as error:
        # Raised by the socket layer or URL handling for inputs aiohttp does not wrap.
        return progress.failed(refusal_of(error) or f"fetch failed: {_describe(error)}")
