"""Health, as `monitor status` and the dashboard judge it: stale feeds, lag, dead letters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition

from monitor.observe.health import (
    DeadLetterSummary,
    FeedHealth,
    HealthReport,
    Thresholds,
    group_lags,
    summarize_dead_letters,
    summarize_feeds,
)
from monitor.observe.status import format_status
from schemas import DeadLetter, FeedPolled, FeedStale, Level, TensionState
from tests.factories import dead_letter, feed_polled, tension_state

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def poll(source: str, status: str, minutes_ago: float, error: str | None = None) -> FeedPolled:
    return feed_polled(source, status, NOW - timedelta(minutes=minutes_ago), error=error)


def state(level: Level, index: float) -> TensionState:
    return tension_state(level, index, NOW - HOUR, breakdown={"armed_incident": index})


def letter(
    minutes_ago: float, stage: str = "tagger", error_type: str = "ValidationError"
) -> DeadLetter:
    return dead_letter(NOW - timedelta(minutes=minutes_ago), stage=stage, error_type=error_type)


def report(**overrides: object) -> HealthReport:
    values: dict[str, object] = {
        "checked_at": NOW,
        "states": (state("elevated", 4.0),),
        "feeds": tuple(summarize_feeds([poll("Caspian Wire", "ok", 10)], NOW, HOUR)),
        "lags": tuple(
            group_lags(
                {"monitor": {TopicPartition("news.items", 0): 10}},
                {TopicPartition("news.items", 0): 12},
            )
        ),
        "dead_letters": DeadLetterSummary(),
        "records": {"news.items": 12},
        "thresholds": Thresholds(stale_after=HOUR),
    }
    values.update(overrides)
    return HealthReport(**values)  # type: ignore[arg-type]


def test_a_feed_read_recently_is_fresh_and_one_that_keeps_failing_goes_stale() -> None:
    feeds = summarize_feeds(
        [
            poll("Caspian Wire", "ok", 90),
            poll("Caspian Wire", "not_modified", 20),
            poll("Baku Post", "ok", 200),
            poll("Baku Post", "error", 50, error="HTTP 503"),
            poll("Baku Post", "error", 5, error="timed out"),
        ],
        NOW,
        HOUR,
    )
    by_source = {feed.source: feed for feed in feeds}

    assert by_source["Caspian Wire"].stale is False
    assert by_source["Caspian Wire"].last_success == NOW - timedelta(minutes=20)
    assert by_source["Baku Post"].stale is True
    assert by_source["Baku Post"].consecutive_errors == 2
    assert by_source["Baku Post"].last_error == "timed out"
    assert feeds[0].source == "Baku Post", "stale feeds come first"


def test_a_feed_that_never_answered_is_stale_at_once() -> None:
    (feed,) = summarize_feeds([poll("Gone", "error", 1, error="HTTP 404")], NOW, HOUR)

    assert feed.stale is True
    assert feed.last_success is None


def test_lag_is_counted_per_group_and_topic_on_the_partitions_the_group_reads() -> None:
    end = {
        TopicPartition("news.items", 0): 100,
        TopicPartition("news.items", 1): 50,
        TopicPartition("news.tagged", 0): 30,
    }
    committed = {
        "monitor": {
            TopicPartition("news.items", 0): 90,
            TopicPartition("news.items", 1): 50,
            TopicPartition("news.tagged", 0): 25,
        },
        "webhooks": {TopicPartition("news.items", 0): -1},  # reads nothing of these
    }

    (lag,) = group_lags(committed, end)

    assert lag.group == "monitor"
    assert lag.by_topic == {"news.items": 10, "news.tagged": 5}
    assert lag.total == 15


def test_only_recent_dead_letters_count_as_news() -> None:
    summary = summarize_dead_letters(
        [letter(60 * 30), letter(10), letter(5, stage="escalator", error_type="KeyError")],
        NOW,
        timedelta(hours=24),
    )

    assert summary.total == 3
    assert summary.recent == 2
    assert summary.by_reason == {"tagger: ValidationError": 2, "escalator: KeyError": 1}
    assert summary.last_at == NOW - timedelta(minutes=5)


def test_all_is_well_when_feeds_are_fresh_lag_small_no_dead_letters_and_level_below_high() -> None:
    healthy = report()

    assert healthy.attention() == []
    assert format_status(healthy).splitlines()[-1] == "OK"


def test_each_problem_is_a_reason_to_look() -> None:
    troubled = report(
        states=(state("high", 9.5),),
        feeds=tuple(summarize_feeds([poll("Gone", "error", 1, error="HTTP 404")], NOW, HOUR)),
        lags=tuple(
            group_lags(
                {"monitor": {TopicPartition("news.items", 0): 0}},
                {TopicPartition("news.items", 0): 5000},
            )
        ),
        dead_letters=summarize_dead_letters([letter(5)], NOW, timedelta(hours=24)),
    )

    reasons = troubled.attention()

    assert reasons == [
        "AZ-RU is at level high (index 9.5)",
        f"consumer group monitor is 5000 records behind (more than {Thresholds().max_lag})",
        "1 stale feed(s): Gone",
        "1 dead letter(s) in the last 24 h",
    ]
    text = format_status(troubled)
    assert "AZ-RU HIGH, index 9.5" in text
    assert (
        "stale        Gone: last success never, 1 error(s) in a row; last error: HTTP 404" in text
    )
    assert "NEEDS ATTENTION" in text


def test_no_collector_at_all_needs_attention_too() -> None:
    assert report(feeds=()).attention() == [
        "no feed poll recorded on feeds.health: is a collector running?"
    ]


def test_the_json_form_carries_the_verdict_and_the_figures() -> None:
    document = report(states=(state("severe", 20.0),)).as_json()

    assert document["ok"] is False
    assert document["consumer_lag"] == {"monitor": {"total": 2, "news.items": 2}}
    feeds = document["feeds"]
    assert isinstance(feeds, list)
    assert feeds[0]["source"] == "Caspian Wire"
    assert feeds[0]["stale"] is False


def test_feed_health_is_a_plain_record() -> None:
    (feed,) = summarize_feeds([poll("Caspian Wire", "ok", 1)], NOW, HOUR)
    assert isinstance(feed, FeedHealth)
    assert feed.polls == 1
    assert feed.errors == 0


def test_a_feed_the_collector_reported_silent_is_stale_until_it_brings_something_new() -> None:
    silence = FeedStale(
        feed_url="https://caspian-wire.example/rss",
        source="Caspian Wire",
        silent_since=NOW - timedelta(days=3),
        silent_for_s=3 * 86400,
        expected_within_s=86400,
        detected_at=NOW - timedelta(minutes=30),
    )
    answering = [poll("Caspian Wire", "not_modified", 10)]
    news = poll("Caspian Wire", "ok", 5).model_copy(update={"items_new": 2})

    (quiet,) = summarize_feeds(answering, NOW, HOUR, [silence])
    (back,) = summarize_feeds([*answering, news], NOW, HOUR, [silence])

    assert quiet.stale is True
    assert quiet.silent_since == NOW - timedelta(days=3)
    assert "nothing new since" in format_status(report(feeds=(quiet,)))
    assert back.stale is False
    assert back.silent_since is None


def test_a_group_committed_past_the_end_of_a_topic_means_the_broker_lost_records() -> None:
    lags = group_lags(
        {"monitor": {TopicPartition("news.items", 0): 1200}},
        {TopicPartition("news.items", 0): 3},
    )
    reasons = report(lags=tuple(lags)).attention()
    (reason,) = [r for r in reasons if "past the end" in r]
    assert "monitor has committed 1197 records past the end of news.items" in reason
    assert "lost records it had acknowledged" in reason
    assert not [r for r in report().attention() if "past the end" in r]
