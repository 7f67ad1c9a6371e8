"""What the integration tests share: starting `monitor` the way a user does."""

from __future__ import annotations

import asyncio
import os
import sys


async def monitor(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """`monitor ARGS…` in a child process, output and errors on one pipe."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
