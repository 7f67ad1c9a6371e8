"""Webhook subscribers: who gets which notice, how requests are signed, how retries wait."""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from pydantic import SecretBytes

from monitor.delivery.webhook import (
    Delivery,
    RetryPolicy,
    Subscriber,
    Unfinished,
    WebhookConfigError,
    delivery_id,
    load_subscribers,
    retry_after_s,
    sign,
    url_label,
    verify,
)
from schemas import EscalationNotice, Level
from tests.factories import notice, story

WHEN = datetime(2024, 12, 25, 6, 30, tzinfo=UTC)


def notice_of(
    level: Level, previous: Level, signals: list[str], kind: str = "raised"
) -> EscalationNotice:
    """A notice moved by `signals`, which its one story is tagged with too."""
    shoot_down = story(
        "i-1", "Azerbaijan Airlines jet hit by Russian air defence fire", signals, WHEN
    )
    return notice(
        f"n-{level}-{kind}",
        level,
        WHEN,
        previous=previous,
        kind=kind,
        index=9.5,
        breakdown={signal: 2.0 for signal in signals},
        evidence=[shoot_down],
    )


def subscriber(min_level: str = "calm", signals: frozenset[str] = frozenset()) -> Subscriber:
    return Subscriber("ops", "https://hooks.example/", SecretBytes(b"s3cret"), min_level, signals)  # type: ignore[arg-type]


def test_a_subscriber_without_filters_gets_every_notice() -> None:
    assert subscriber().wants(notice_of("elevated", "calm", ["diplomatic_protest"]))


def test_min_level_counts_a_notice_at_the_higher_of_its_old_and_new_level() -> None:
    high_only = subscriber(min_level="high")

    assert not high_only.wants(notice_of("elevated", "calm", ["diplomatic_protest"]))
    assert high_only.wants(notice_of("high", "elevated", ["armed_incident"]))
    assert high_only.wants(notice_of("elevated", "high", ["conciliation"], kind="lowered")), (
        "whoever heard it reach high hears it leave"
    )


def test_a_signal_filter_matches_what_moved_the_index_or_tags_the_evidence() -> None:
    armed = subscriber(signals=frozenset({"armed_incident"}))

    assert armed.wants(notice_of("high", "elevated", ["armed_incident", "detentions"]))
    assert not armed.wants(notice_of("elevated", "calm", ["diplomatic_protest"]))


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"notice_id":"n-1"}'
    expected = hmac.new(b"s3cret", b"1735108200." + body, hashlib.sha256).hexdigest()

    assert sign(b"s3cret", 1735108200, body) == f"sha256={expected}"


def test_a_receiver_accepts_a_fresh_signature_and_refuses_tampering_and_replays() -> None:
    body = b'{"notice_id":"n-1"}'
    signature = sign(b"s3cret", 1735108200, body)

    assert verify(b"s3cret", body, "1735108200", signature, now=1735108260)
    assert not verify(b"s3cret", body + b" ", "1735108200", signature, now=1735108260)
    assert not verify(b"other", body, "1735108200", signature, now=1735108260)
    assert not verify(b"s3cret", body, "1735108200", signature, now=1735108200 + 3600), (
        "an hour-old request is a replay"
    )
    assert not verify(b"s3cret", body, "yesterday", signature, now=1735108260)


def test_the_delivery_id_is_stable_per_subscriber_and_notice() -> None:
    ops = subscriber()
    other = Subscriber("analysts", "https://a.example/", SecretBytes(b"x"))

    assert delivery_id(ops, "n-1") == delivery_id(ops, "n-1")
    assert delivery_id(ops, "n-1") != delivery_id(ops, "n-2")
    assert delivery_id(ops, "n-1") != delivery_id(other, "n-1")


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = datetime(2024, 12, 25, 6, 30, tzinfo=UTC)
    in_two_minutes = format_datetime(now + timedelta(minutes=2), usegmt=True)

    assert in_two_minutes == "Wed, 25 Dec 2024 06:32:00 GMT"
    assert retry_after_s("300", now) == 300
    assert retry_after_s(in_two_minutes, now) == 120
    assert retry_after_s("Wed, 25 Dec 2024 06:00:00 GMT", now) == 0, "a date past: at once"
    assert retry_after_s("soon", now) is None
    assert retry_after_s("-5", now) is None
    assert retry_after_s(None, now) is None


def test_backoff_doubles_up_to_a_cap_and_respects_retry_after() -> None:
    policy = RetryPolicy(max_attempts=6, backoff_s=2, max_backoff_s=10)

    assert [policy.delay_s(n) for n in range(1, 6)] == [2, 4, 8, 10, 10]
    assert policy.delay_s(1, retry_after=7) == 7
    assert policy.delay_s(1, retry_after=3600) == 10


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "webhooks.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_subscribers_are_read_from_toml_with_secrets_from_the_environment(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        '[[subscribers]]\nname = "ops"\nurl = "https://hooks.example/monitor"\n'
        'secret_env = "OPS_SECRET"\nmin_level = "high"\nsignals = ["armed_incident"]\n\n'
        '[[subscribers]]\nurl = "http://archive.example/in"\nsecret_env = "ARCHIVE_SECRET"\n',
    )

    ops, archive = load_subscribers(path, {"OPS_SECRET": "s3cret", "ARCHIVE_SECRET": "a"})

    assert ops == Subscriber(
        "ops",
        "https://hooks.example/monitor",
        SecretBytes(b"s3cret"),
        "high",
        frozenset({"armed_incident"}),
    )
    assert archive.name == url_label("http://archive.example/in"), "no name: its label"
    assert archive.min_level == "calm"
    assert archive.signals == frozenset()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('url = "ftp://x.example/"\nsecret_env = "S"', "url must be http or https"),
        ('url = "https://x.example/"', "secret_env names no environment variable"),
        ('url = "https://x.example/"\nsecret_env = "UNSET"', "UNSET is not set"),
        ('url = "https://x.example/"\nsecret_env = "S"\nmin_level = "dire"', "min_level"),
        ('url = "https://x.example/"\nsecret_env = "S"\nsignals = ["war"]', "unknown signals"),
    ],
)
def test_a_bad_subscriber_is_a_clear_error(tmp_path: Path, entry: str, message: str) -> None:
    path = write(tmp_path, f"[[subscribers]]\n{entry}\n")

    with pytest.raises(WebhookConfigError, match=message):
        load_subscribers(path, {"S": "secret"})


SLACK = "https://hooks.slack.example/services/T0001/B0002/XXXXSECRETXXXX"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (SLACK, "https://hooks.slack.example/#"),
        ("https://ops:hunter2@hooks.example:8443/in?token=abc123", "https://hooks.example:8443/#"),
        ("http://[::1]:9000/discord/api/webhooks/1/tok", "http://[::1]:9000/#"),
    ],
)
def test_a_url_is_shown_as_its_host_and_a_fingerprint_never_its_credentials(
    url: str, shown: str
) -> None:
    label = url_label(url)
    fingerprint = hashlib.sha256(url.encode()).hexdigest()[:12]

    assert label == shown + fingerprint
    for secret in ("XXXXSECRETXXXX", "hunter2", "ops:", "abc123", "tok", "webhooks"):
        assert secret not in label


def test_a_subscribers_repr_and_logs_show_neither_its_secret_nor_its_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook = Subscriber("slack", SLACK, SecretBytes(b"hmac-s3cret-key"))

    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").warning("subscriber %s, %r, %s", hook, hook, hook.secret)
    shown = caplog.text + repr(hook) + str(hook)

    assert "hmac-s3cret-key" not in shown
    assert "XXXXSECRETXXXX" not in shown
    assert "slack" in shown
    assert hook.label.startswith("https://hooks.slack.example/#")


def test_an_error_message_naming_the_url_is_redacted_to_its_label() -> None:
    hook = Subscriber("ops", "http://u:pw-991@hooks.example/in?token=t0k3n-55", SecretBytes(b"s"))

    said = hook.redact(
        "InvalidURL: http://u:pw-991@hooks.example/in?token=t0k3n-55 (token=t0k3n-55)"
    )

    assert "pw-991" not in said
    assert "t0k3n-55" not in said
    assert hook.label in said


NOTICES_TP = TopicPartition("alerts.escalations", 0)


def test_a_partition_is_committed_up_to_the_first_notice_a_subscriber_still_owes() -> None:
    unfinished = Unfinished()
    shown = notice_of("high", "elevated", ["armed_incident"])

    def handed(offset: int, subscribers: int) -> list[Delivery]:
        epoch = unfinished.read(NOTICES_TP, offset, subscribers)
        return [Delivery(shown, b"{}", NOTICES_TP, offset, epoch)] * subscribers

    first = handed(0, 2)  # two subscribers want it
    handed(1, 0)  # nobody does (or it was skipped)
    third = handed(2, 1)

    assert unfinished.committable() == {NOTICES_TP: 0}
    unfinished.finish(first[0])
    unfinished.finish(third[0])
    assert unfinished.committable() == {NOTICES_TP: 0}, "one subscriber still owes offset 0"
    unfinished.finish(first[1])
    assert unfinished.committable() == {NOTICES_TP: 3}
    assert len(unfinished) == 0


def test_notices_of_a_partition_handed_over_are_no_longer_this_deliverers() -> None:
    unfinished = Unfinished()
    epoch = unfinished.read(NOTICES_TP, 5, 1)
    queued = Delivery(notice_of("high", "elevated", []), b"{}", NOTICES_TP, 5, epoch)

    unfinished.forget([NOTICES_TP])
    again = unfinished.read(NOTICES_TP, 5, 1)  # assigned back, read again from its commit

    assert not unfinished.current(queued)
    unfinished.finish(queued)  # the old copy, finished late, settles nothing
    assert unfinished.committable() == {NOTICES_TP: 5}
    unfinished.finish(Delivery(queued.notice, b"{}", NOTICES_TP, 5, again))
    assert unfinished.committable() == {NOTICES_TP: 6}
