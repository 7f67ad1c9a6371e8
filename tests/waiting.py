"""Waiting for what a test can only observe from outside: a topic, a page, a server's log.

No fixed sleeps: ask again until the answer is the one wanted, and fail with the
last answer when it never comes.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], T | Awaitable[T]],
    done: Callable[[T], object] = bool,
    *,
    timeout_s: float = 30.0,
    every_s: float = 0.2,
    describe: Callable[[T], str] | None = None,
) -> T:
    """Ask `probe` every `every_s` until `done(answer)` holds; return that answer.

    After `timeout_s` the test fails, showing the last answer (through `describe`
    when given, else its repr).
    """
    answer: T | None = None
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                asked = probe()
                answer = await asked if inspect.isawaitable(asked) else asked
                if done(answer):
                    return answer
                await asyncio.sleep(every_s)
    except TimeoutError:
        if answer is None:
            shown = "no answer"
        elif describe is not None:
            shown = describe(answer)
        else:
            shown = f"the last answer was: {repr(answer)[-2000:]}"
        raise AssertionError(f"not done within {timeout_s:g} s; {shown}") from None
