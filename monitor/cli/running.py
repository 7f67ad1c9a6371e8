"""What every command shares: how it runs its coroutine, and how it exits on an error.

Exit status: 0 done; 1 a MonitorError (its message, no traceback); 2 the rules
cannot be read, the status of click's usage errors and of `monitor tag` and
`evaluate` for input they cannot read. Some commands add their own (`status`,
`feeds check`); docs/cli.md lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import click

from monitor.errors import MonitorError
from monitor.tagging.commands import EXIT_UNUSABLE_INPUT
from monitor.tagging.rules import RuleFileError

T = TypeVar("T")

# A one-shot coroutine, or a long-running one that stops when the event is set.
Work = Coroutine[Any, Any, T] | Callable[[asyncio.Event], Coroutine[Any, Any, T]]


class BrokenRules(click.ClickException):
    exit_code = EXIT_UNUSABLE_INPUT


@contextlib.contextmanager
def exits_on_errors() -> Iterator[None]:
    """Turn the monitor's own errors into a one-line message and an exit status."""
    try:
        yield
    except RuleFileError as error:
        raise BrokenRules(f"broken rules: {error}") from error
    except MonitorError as error:
        raise click.ClickException(str(error)) from error


class MonitorGroup(click.Group):
    """A group whose commands, and their subcommands, all exit the same way on errors."""

    def invoke(self, ctx: click.Context) -> Any:
        with exits_on_errors():
            return super().invoke(ctx)


def run(work: Work[T]) -> T:
    """Run a command's coroutine on a fresh event loop.

    A one-shot coroutine runs to its end (Ctrl-C aborts it, as any program). A
    long-running one is passed as a function of a `stop` event instead: SIGINT and
    SIGTERM set the event, and it winds down by itself (leaves its consumer group,
    commits, closes its servers) rather than being killed mid-write.
    """
    if asyncio.iscoroutine(work):
        return asyncio.run(work)
    assert callable(work)
    return asyncio.run(_until_signalled(work))


async def _until_signalled(work: Callable[[asyncio.Event], Coroutine[Any, Any, T]]) -> T:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    return await work(stop)


async def until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run `work` until it ends or `stop` is set, whichever comes first."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopper):
            pending.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
