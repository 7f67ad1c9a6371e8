"""Progress of long runs: a line redrawn on a terminal, plain periodic lines in logs."""

from __future__ import annotations

import io

import pytest

from monitor.observe.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_in_a_log_a_plain_line_appears_every_interval_with_rate_and_eta() -> None:
    out, clock = io.StringIO(), FakeClock()
    with Progress("replaying news.items", total=1000, stream=out, every_s=5, clock=clock) as p:
        for _ in range(10):
            clock.now += 1
            p.advance(50)

    lines = out.getvalue().splitlines()

    assert lines == [
        "replaying news.items: 250/1000 records, 25%, 50.0/s, ETA 15 s",
        "replaying news.items: 500/1000 records, 50%, 50.0/s, ETA 10 s",
        "replaying news.items: done, 500 records in 10 s",
    ]
    assert "\r" not in out.getvalue()


def test_on_a_terminal_one_line_is_redrawn_in_place() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress("ingest", stream=out, clock=clock, tty=True, unit="items")
    clock.now += 2
    progress.advance(10)
    progress.finish()

    text = out.getvalue()

    assert text.startswith("\r\x1b[Kingest: 10 items, 5.0/s")
    assert "ETA" not in text, "no total, no ETA"
    assert text.endswith("ingest: done, 10 items in 2 s\n")


def test_a_run_that_fails_says_it_stopped_and_lets_the_error_through() -> None:
    out, clock = io.StringIO(), FakeClock()

    def backtest_that_fails_after_two_records() -> None:
        with Progress("backtest", total=3, stream=out, clock=clock) as progress:
            clock.now += 4
            progress.advance(2)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        backtest_that_fails_after_two_records()

    assert out.getvalue() == "backtest: stopped, 2 records in 4 s\n"
