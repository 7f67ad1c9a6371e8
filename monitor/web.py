"""Serving a small aiohttp application: the one lifecycle every server here shares."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def serving(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[int]:
    """Serve `app` until the block ends; yields the port bound (pass 0 for any free one)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = port
        server = site._server
        if server is not None:
            with contextlib.suppress(AttributeError, IndexError):
                bound = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        yield bound
    finally:
        await runner.cleanup()
