"""The dashboard's memory: what it keeps of months of records stays bounded, and what
it shows from it is what the whole history says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.escalation.scoring import ScoringConfig
from monitor.observe.dashboard import (
    MAX_NOTICES,
    TIMELINE_BUCKETS,
    DashboardState,
    snapshot,
)
from monitor.observe.health import DeadLetterTally, Thresholds
from monitor.records import RawRecord
from monitor.topics import (
    ALERTS_ESCALATIONS,
    FEEDS_HEALTH,
    NEWS_DEADLETTER,
    TENSION_STATE,
    TopicSpec,
)
from schemas import Event, Level, encode
from tests.factories import dead_letter, feed_polled, notice, tension_state

START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 30
FEEDS = ("Caspian Wire", "Baku Post", "Steppe Courier")
WINDOW = timedelta(hours=24)
HOURS = 2 * TIMELINE_BUCKETS + 500  # of tension states: more than the timeline holds at 1 h
SPIKE = 11  # the one severe hour, early on
NOTICES = 10 * MAX_NOTICES  # more than it shows


class Log:
    """Records as the dashboard's followers read them, each at the next offset."""

    def __init__(self, state: DashboardState) -> None:
        self.state = state
        self.offsets: dict[str, int] = {}

    def put(self, spec: TopicSpec, key: str, event: Event) -> None:
        offset = self.offsets.get(spec.name, 0)
        self.offsets[spec.name] = offset + 1
        record = RawRecord(spec.name, 0, offset, key.encode(), encode(event))
        self.state.take(spec, record)


def a_month_of_everything() -> tuple[DashboardState, datetime]:
    state = DashboardState(letters=DeadLetterTally(WINDOW))
    log = Log(state)
    at = START
    end = START + timedelta(days=DAYS)
    polls = 0
    while at < end:  # every feed every 15 minutes; Baku Post fails every 4th time
        for source in FEEDS:
            status = "error" if source == "Baku Post" and polls % 4 == 3 else "ok"
            poll = feed_polled(source, status, at, error="HTTP 503" if status == "error" else None)
            log.put(FEEDS_HEALTH, poll.feed_url, poll)
        polls += 1
        at += timedelta(minutes=15)
    for hour in range(HOURS):  # a state an hour; one hour of it severe
        level: Level = "severe" if hour == SPIKE else "elevated"
        index = 30.0 if hour == SPIKE else 3.0 + hour % 5 / 10
        log.put(TENSION_STATE, "AZ-RU", tension_state(level, index, START + timedelta(hours=hour)))
    for number in range(NOTICES):  # a notice every 3 hours
        raised = notice(f"n-{number}", "high", START + timedelta(hours=3 * number))
        log.put(ALERTS_ESCALATIONS, "AZ-RU", raised)
    last_day = end - timedelta(days=3)
    for minute in range(3 * 24 * 60):  # a dead letter a minute for the last three days
        log.put(NEWS_DEADLETTER, "x", dead_letter(last_day + timedelta(minutes=minute)))
    return state, end


def test_a_month_of_records_leaves_a_bounded_window_in_memory() -> None:
    state, _ = a_month_of_everything()

    assert state.retained() == {
        "timeline buckets": HOURS // 4,  # 4 h each: twice coarsened
        "notices": MAX_NOTICES,
        "feeds": len(FEEDS),
        "dead letter minutes": 24 * 60 + 1,
    }


def test_what_it_shows_from_that_window_is_what_the_whole_month_says() -> None:
    state, end = a_month_of_everything()
    now = end - timedelta(minutes=1)

    shown = snapshot(state, now, Thresholds(dead_letter_window=WINDOW), ScoringConfig.load())
    feeds = {feed["source"]: feed for feed in shown["feeds"]}
    polls_each = DAYS * 24 * 4

    assert {source: feed["polls"] for source, feed in feeds.items()} == dict.fromkeys(
        FEEDS, polls_each
    )
    assert feeds["Baku Post"]["errors"] == polls_each // 4
    assert feeds["Baku Post"]["consecutive_errors"] == 1, "its last poll failed"
    assert feeds["Baku Post"]["last_error"] == "HTTP 503"
    assert feeds["Caspian Wire"]["last_success"] == (end - timedelta(minutes=15)).isoformat()
    assert [n["notice_id"] for n in shown["notices"]] == [
        f"n-{number}" for number in range(NOTICES - 1, NOTICES - 1 - MAX_NOTICES, -1)
    ]
    timeline = shown["timeline"]
    last_state = START + timedelta(hours=HOURS - 1)
    assert datetime.fromisoformat(shown["current"][0]["as_of"]) == last_state
    assert datetime.fromisoformat(timeline[0]["t"]) < START + timedelta(hours=4), "from the start"
    assert timeline[-1]["t"] == last_state.isoformat(), "to the latest state"
    assert len(timeline) <= 2 * TIMELINE_BUCKETS, "a bucket's peak and its last state"
    assert [p for p in timeline if p["level"] == "severe"] == [
        {"t": (START + timedelta(hours=SPIKE)).isoformat(), "index": 30.0, "level": "severe"}
    ], "an hour's spike stays on the chart of months"
    assert shown["dead_letters"]["total"] == 3 * 24 * 60
    assert shown["dead_letters"]["recent"] == 24 * 60 + 1, "the last 24 h, both ends counted"


def test_a_redelivered_notice_replaces_its_copy() -> None:
    state = DashboardState()
    log = Log(state)
    raised = notice("n-1", "high", START)

    log.put(ALERTS_ESCALATIONS, "AZ-RU", raised)
    log.put(ALERTS_ESCALATIONS, "AZ-RU", raised)

    assert state.retained()["notices"] == 1
