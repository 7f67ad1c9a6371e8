"""Progress of long runs (ingest, replay, backtest, digest): counts, rate, ETA.

On a terminal one line is redrawn in place; anywhere else (CI logs, docker
logs, a pipe) a plain line is written every `every_s` seconds, so logs show
progress without a flood of carriage returns.

    with Progress("replaying news.items", total=len(records)) as progress:
        for record in records:
            ...
            progress.advance()
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """Counts work done and shows it; `total` may be unknown (None)."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        every_s: float = 5.0,
        unit: str = "records",
        clock: Callable[[], float] = time.monotonic,
        tty: bool | None = None,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self.clock = clock
        self.tty = tty if tty is not None else bool(getattr(self.stream, "isatty", bool)())
        self.started = clock()
        self._last_shown = self.started
        # On a terminal redraw often; the interval only thins out log lines.
        self._tty_every_s = 0.1

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finish(failed=exc_type is not None)

    @property
    def rate(self) -> float:
        """Units per second since the start."""
        elapsed = self.clock() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        if self.total is None or self.rate <= 0:
            return None
        return max(0, self.total - self.done) / self.rate

    def line(self) -> str:
        count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        parts = [f"{self.label}: {count} {self.unit}"]
        if self.total:
            parts.append(f"{100 * self.done / self.total:.0f}%")
        parts.append(f"{self.rate:.1f}/s")
        eta = self.eta_s()
        if eta is not None and self.done < (self.total or 0):
            parts.append(f"ETA {_duration(eta)}")
        return ", ".join(parts)

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = self.clock()
        if now - self._last_shown >= (self._tty_every_s if self.tty else self.every_s):
            self._last_shown = now
            self._show()

    def _show(self, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line() + ("\n" if final else ""))
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def finish(self, failed: bool = False) -> None:
        """The last line: what was done, in how long."""
        elapsed = _duration(self.clock() - self.started)
        outcome = "stopped" if failed else "done"
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(f"{self.label}: {outcome}, {self.done} {self.unit} in {elapsed}\n")
        self.stream.flush()
