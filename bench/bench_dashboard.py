"""The dashboard after a month and after a year of the bundled catalogue's records.

    .venv/bin/python bench/bench_dashboard.py [--months 1 12] [--rounds 30]

Feeds the dashboard's state (`DashboardState.take`, the path its topic followers
take: decode, check, fold) with what the monitor writes in that time: every feed
of the bundled catalogue (42) polled every 15 minutes (a poll in 20 fails, one in
10 brings news), a tension state an hour, a notice a day and five dead letters a
day. A year is 1.47 M polls. Measured, side by side in one run:

- the entries the state retains, and the memory it holds (pympler's asizeof:
  every object reachable from the state, shared ones once);
- the time of one snapshot (what /api/snapshot computes on every refresh of the
  page), median of `--rounds`, the months' states alternating.

Target: the year's memory and snapshot time equal to the month's (ratio ≈ 1).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from pympler import asizeof

from monitor.collect.catalogue import load_catalogue
from monitor.config import DEFAULT_FEEDS
from monitor.escalation.scoring import ScoringConfig
from monitor.observe.dashboard import DashboardState, snapshot
from monitor.observe.health import DeadLetterTally, Thresholds
from monitor.records import RawRecord
from monitor.topics import (
    ALERTS_ESCALATIONS,
    FEEDS_HEALTH,
    NEWS_DEADLETTER,
    TENSION_STATE,
    TopicSpec,
)
from schemas import (
    DeadLetter,
    EscalationNotice,
    Event,
    FeedPolled,
    TensionState,
    encode,
)

START = datetime(2025, 1, 1, tzinfo=UTC)
POLL_EVERY = timedelta(minutes=15)
THRESHOLDS = Thresholds()


def records(months: int) -> Iterator[tuple[TopicSpec, RawRecord]]:
    """What the followers would read over `months` (30 days each), in time order."""
    feeds = load_catalogue(DEFAULT_FEEDS)
    end = START + timedelta(days=30 * months)
    offsets: dict[str, int] = {}

    def record(spec: TopicSpec, key: str, event: Event) -> tuple[TopicSpec, RawRecord]:
        offset = offsets.get(spec.name, 0)
        offsets[spec.name] = offset + 1
        return spec, RawRecord(spec.name, 0, offset, key.encode(), encode(event))

    at, rounds = START, 0
    while at < end:
        for number, feed in enumerate(feeds):
            failed = (rounds + number) % 20 == 0
            poll = FeedPolled(
                feed_url=feed.url,
                source=feed.name,
                status="error" if failed else "ok",
                http_status=None if failed else 200,
                error="HTTP 503" if failed else None,
                duration_ms=120.0,
                items_seen=20,
                items_new=1 if (rounds + number) % 10 == 5 else 0,
                polled_at=at + timedelta(seconds=number * 20),
            )
            yield record(FEEDS_HEALTH, feed.url, poll)
        if rounds % 4 == 0:  # on the hour: the escalator's state
            state = TensionState(
                dyad="AZ-RU",
                level="elevated",
                index=3.0 + (rounds % 96) / 96,
                breakdown={"diplomatic_protest": 3.0},
                as_of=at,
                items_counted=rounds,
                last_item_id=f"i-{rounds}",
            )
            yield record(TENSION_STATE, "AZ-RU", state)
        if rounds % 96 == 0:  # a day: a notice, five dead letters
            notice = EscalationNotice(
                notice_id=f"n-{rounds}",
                dyad="AZ-RU",
                kind="raised",
                level="high",
                previous_level="elevated",
                index=9.5,
                breakdown={"armed_incident": 9.5},
                event_time=at,
                trigger_item_id=f"i-{rounds}",
                evidence=[],
            )
            yield record(ALERTS_ESCALATIONS, "AZ-RU", notice)
            for letter in range(5):
                dead = DeadLetter(
                    stage="tagger",
                    topic="news.items",
                    partition=0,
                    offset=rounds * 5 + letter,
                    key_b64=None,
                    value_b64="e30=",
                    error_type="ValidationError",
                    error="title: Field required",
                    failed_at=at + timedelta(minutes=letter),
                )
                yield record(NEWS_DEADLETTER, "", dead)
        at += POLL_EVERY
        rounds += 1


def fed(months: int) -> tuple[DashboardState, int, datetime]:
    """A state fed `months` of records: it, the polls fed, the end time."""
    state = DashboardState(letters=DeadLetterTally(THRESHOLDS.dead_letter_window))
    polls = 0
    for spec, record in records(months):
        state.take(spec, record)
        polls += spec is FEEDS_HEALTH
    return state, polls, START + timedelta(days=30 * months)


def snapshot_s(state: DashboardState, now: datetime, scoring: ScoringConfig) -> float:
    began = time.perf_counter()
    snapshot(state, now, THRESHOLDS, scoring)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, nargs=2, default=[1, 12], metavar=("SHORT", "LONG"))
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    scoring = ScoringConfig.load()

    runs = []
    for months in args.months:
        began = time.perf_counter()
        state, polls, end = fed(months)
        took = time.perf_counter() - began
        each = took / polls * 1e6
        print(f"fed {months} month(s): {polls:,} polls in {took:.0f} s ({each:.0f} µs a poll)")
        runs.append((months, state, polls, asizeof.asizeof(state), end))

    times: dict[int, list[float]] = {months: [] for months, *_ in runs}
    for _ in range(args.rounds):  # alternating, so that drift hits both alike
        for months, state, _, _, end in runs:
            times[months].append(snapshot_s(state, end, scoring))

    (
        (short, short_state, short_polls, short_held, _),
        (long, long_state, long_polls, long_held, _),
    ) = runs
    short_ms = statistics.median(times[short]) * 1000
    long_ms = statistics.median(times[long]) * 1000
    print()
    print(f"| | {short} month(s) | {long} months | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| polls fed | {short_polls:,} | {long_polls:,} | {long_polls / short_polls:.1f} |")
    for part, count in short_state.retained().items():
        other = long_state.retained()[part]
        print(f"| {part} retained | {count:,} | {other:,} | {other / max(count, 1):.2f} |")
    print(
        f"| memory held | {short_held / 1024:,.0f} KiB | {long_held / 1024:,.0f} KiB"
        f" | **{long_held / short_held:.2f}** |"
    )
    short_points = len(snapshot(short_state, START, THRESHOLDS, scoring)["timeline"])
    long_points = len(snapshot(long_state, START, THRESHOLDS, scoring)["timeline"])
    print(
        f"| timeline points drawn | {short_points:,} | {long_points:,}"
        f" | {long_points / short_points:.2f} |"
    )
    print(
        f"| snapshot, median of {args.rounds} | {short_ms:.2f} ms | {long_ms:.2f} ms"
        f" | **{long_ms / short_ms:.2f}** |"
    )


if __name__ == "__main__":
    main()
