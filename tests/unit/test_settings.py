"""One settings object, each default written once in monitor/config.py; and one clock."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from monitor.config import Settings
from monitor.delivery.webhook import RetryPolicy
from monitor.observe.health import Thresholds


def test_the_health_thresholds_default_to_the_settings() -> None:
    assert Thresholds() == Thresholds.from_settings(Settings())


def test_the_thresholds_follow_the_settings() -> None:
    settings = Settings(stale_after_unread_s=60, max_lag=3, alert_level="severe")

    thresholds = Thresholds.from_settings(settings)

    assert thresholds.stale_after == timedelta(minutes=1)
    assert thresholds.max_lag == 3
    assert thresholds.alert_level == "severe"


def test_the_webhook_retry_policy_defaults_to_the_settings() -> None:
    assert RetryPolicy() == RetryPolicy.from_settings(Settings())
    assert RetryPolicy.from_settings(Settings(webhook_max_attempts=2)).max_attempts == 2


def test_the_two_kinds_of_stale_feed_are_two_settings() -> None:
    settings = Settings()

    # Silence: the feed answers but brings nothing new (the collector's FeedStale).
    # Unread: no successful poll at all (what `monitor status` calls stale).
    assert settings.stale_after_silence_s != settings.stale_after_unread_s
    assert not hasattr(settings, "stale_after_s")


def test_only_the_clock_module_reads_the_wall_clock() -> None:
    package = Path(__file__).resolve().parents[2] / "monitor"
    wall_clock = re.compile(r"\bdatetime\.(now|utcnow|today)\(|\btime\.time\(|\bdate\.today\(")

    readers = [
        str(source.relative_to(package))
        for source in package.rglob("*.py")
        if source.name != "clock.py" and wall_clock.search(source.read_text(encoding="utf-8"))
    ]

    assert not readers, f"{readers} read the wall clock; take a monitor.clock.Clock instead"
