"""Webhook delivery: POST each escalation notice to the subscribers who want it.

Every request is signed so that a receiver can tell it came from us and has
not been replayed, and carries a delivery id that stays the same across
retries and redeliveries, so that a receiver can de-duplicate:

    X-Monitor-Delivery:  d-…            one id per (subscriber, notice)
    X-Monitor-Timestamp: 1735120800     Unix seconds when this attempt was signed
    X-Monitor-Signature: sha256=<hex>   HMAC-SHA256(secret, f"{timestamp}." + body)

The body is the notice exactly as it is on `alerts.escalations` (it validates
against schemas/json/EscalationNotice.json). Each subscriber has a lane of
its own: its notices in order, retried with exponential backoff and as long as
its Retry-After asks (up to the longest wait), so that a slow or absent
subscriber delays no other and the consumer keeps polling. What a subscriber
still does not take is parked on `alerts.webhooks.deadletter` as a
WebhookFailed with the reason and the notice, and delivery goes on. A notice's
offset is committed once every subscriber is done with it: after a crash a
notice may be POSTed again, with the same delivery id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import SecretBytes
from yarl import URL

from monitor.clock import Clock, utc_now
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.kafka import producer, publish
from monitor.observe.skips import Skips
from monitor.records import Outgoing, RawRecord
from monitor.topics import ALERTS_ESCALATIONS, WEBHOOKS_DEADLETTER
from schemas import LEVELS, SIGNAL_IDS, EscalationNotice, Level, WebhookFailed

log = logging.getLogger(__name__)

USER_AGENT = "baku-moscow-monitor-webhook/1"
SIGNATURE_HEADER = "X-Monitor-Signature"
TIMESTAMP_HEADER = "X-Monitor-Timestamp"
DELIVERY_HEADER = "X-Monitor-Delivery"
NOTICE_HEADER = "X-Monitor-Notice"
ATTEMPT_HEADER = "X-Monitor-Attempt"


class WebhookConfigError(MonitorError):
    """The webhook file is unreadable or names something that does not exist."""


# -- subscribers --------------------------------------------------------------


def url_label(url: str) -> str:
    """The URL as it may be shown in logs and on topics: scheme, host and port, and a
    fingerprint of the whole URL (the first 12 hex digits of its SHA-256).

    Webhook URLs often carry their credentials: `user:password@`, `?token=`, or the
    path itself (Slack's /services/T…/B…/secret, Discord's /api/webhooks/id/token).
    None of that is shown; the host and the fingerprint tell subscribers apart, and
    `printf %s URL | sha256sum` gives the fingerprint of a URL one has.
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    with contextlib.suppress(ValueError):  # a port that is no number: leave it out
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    fingerprint = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    return f"{parts.scheme}://{host}/#{fingerprint}"


@dataclass(frozen=True)
class Subscriber:
    """A webhook subscriber. Its URL and secret stay out of its repr (and so out of logs
    and tracebacks): the secret is a SecretBytes, the URL is shown as its `label`."""

    name: str
    url: str = field(repr=False)
    secret: SecretBytes = field(repr=False)
    min_level: Level = "calm"
    signals: frozenset[str] = frozenset()  # empty: every signal

    @property
    def label(self) -> str:
        return url_label(self.url)

    def redact(self, text: str) -> str:
        """`text` (an error message, a response) with this subscriber's URL and the
        credentials in it replaced, whatever form a library printed it in."""
        text = text.replace(self.url, self.label).replace(str(URL(self.url)), self.label)
        parts = urlsplit(self.url)
        for secret in (parts.password, parts.query, parts.path):
            if secret and len(secret) > 1:  # a bare "/" path says nothing
                text = text.replace(secret, "…")
        return text

    def wants(self, notice: EscalationNotice) -> bool:
        """Whether this notice is for this subscriber.

        Level: a notice counts at the higher of its old and new level, so that a
        subscriber to "high" hears both that it was reached and that it was left.
        Signals: any signal that moved the index or tags the evidence.
        """
        rank = max(LEVELS.index(notice.level), LEVELS.index(notice.previous_level))
        if rank < LEVELS.index(self.min_level):
            return False
        if not self.signals:
            return True
        moved = {signal for signal, value in notice.breakdown.items() if value}
        cited = {signal for item in notice.evidence for signal in item.signals}
        return bool(self.signals & (moved | cited))


def load_subscribers(path: Path, environ: Mapping[str, str] | None = None) -> list[Subscriber]:
    """Read the `[[subscribers]]` tables of a TOML file; secrets come from the environment."""
    environ = environ if environ is not None else os.environ
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise WebhookConfigError(f"{path}: {error}") from error
    entries = data.get("subscribers")
    if not isinstance(entries, list) or not entries:
        raise WebhookConfigError(f"{path}: no [[subscribers]] table")
    subscribers = []
    names: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: subscriber #{number}"
        url = str(entry.get("url", ""))
        # The URL may hold a token: errors name the subscriber, never print the URL.
        if not url.startswith(("http://", "https://")):
            raise WebhookConfigError(f"{where}: url must be http or https")
        if not urlsplit(url).hostname:
            raise WebhookConfigError(f"{where}: url has no host")
        name = str(entry.get("name") or url_label(url))
        if name in names:
            raise WebhookConfigError(f"{where}: the name {name!r} is used twice")
        names.add(name)
        secret_env = entry.get("secret_env")
        if not secret_env:
            raise WebhookConfigError(f"{where}: secret_env names no environment variable")
        secret = environ.get(str(secret_env))
        if not secret:
            raise WebhookConfigError(f"{where}: the environment variable {secret_env} is not set")
        min_level = str(entry.get("min_level", "calm"))
        if min_level not in LEVELS:
            raise WebhookConfigError(f"{where}: min_level must be one of {', '.join(LEVELS)}")
        signals = frozenset(str(s) for s in entry.get("signals", []))
        unknown = signals - set(SIGNAL_IDS)
        if unknown:
            raise WebhookConfigError(f"{where}: unknown signals {sorted(unknown)}")
        subscribers.append(
            Subscriber(
                name=name,
                url=url,
                secret=SecretBytes(secret.encode("utf-8")),
                min_level=min_level,  # checked against LEVELS
                signals=signals,
            )
        )
    return subscribers


# -- signing --------------------------------------------------------------------


def delivery_id(subscriber: Subscriber, notice_id: str) -> str:
    """The same for every attempt and every redelivery of one notice to one subscriber."""
    digest = hashlib.sha256(f"{subscriber.name}\n{notice_id}".encode()).hexdigest()
    return f"d-{digest[:24]}"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: bytes,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    now: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """What a receiver does: check the signature, and that it is recent (no replays)."""
    try:
        stamped = int(timestamp)
    except ValueError:
        return False
    current = utc_now().timestamp() if now is None else now
    if abs(current - stamped) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, stamped, body), signature)


# -- delivering -------------------------------------------------------------------


DEFAULTS = Settings()


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a notice is offered; the defaults are the settings'."""

    max_attempts: int = DEFAULTS.webhook_max_attempts
    backoff_s: float = DEFAULTS.webhook_backoff_s  # before the 2nd attempt; doubles each time
    max_backoff_s: float = DEFAULTS.webhook_max_backoff_s
    timeout_s: float = DEFAULTS.webhook_timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.webhook_max_attempts,
            settings.webhook_backoff_s,
            settings.webhook_max_backoff_s,
            settings.webhook_timeout_s,
        )

    def delay_s(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        delay: float = min(self.max_backoff_s, self.backoff_s * 2.0 ** (attempt - 1))
        if retry_after is not None:
            delay = max(delay, min(self.max_backoff_s, retry_after))
        return delay


@dataclass(frozen=True)
class Outcome:
    subscriber: Subscriber
    delivery_id: str
    delivered: bool
    attempts: int
    last_status: int | None = None
    reason: str = ""
    permanent: bool = False


def _retryable(status: int) -> bool:
    return status in (408, 425, 429) or status >= 500


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """Seconds a `Retry-After` header asks to wait: delta-seconds or an HTTP-date
    (RFC 9110, 10.2.3); None when there is none or it cannot be read."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": GMT, which is what HTTP-dates are
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class Attempt:
    """What one POST came back with."""

    status: int | None
    reason: str = ""
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        """A 4xx other than the retryable ones: the receiver does not want it, ever."""
        return self.status is not None and not self.delivered and not _retryable(self.status)


async def post(
    session: aiohttp.ClientSession,
    subscriber: Subscriber,
    notice_id: str,
    body: bytes,
    attempt: int,
    policy: RetryPolicy,
    clock: Clock = utc_now,
) -> Attempt:
    """POST `body` to `subscriber` once, signed."""
    timestamp = int(clock().timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: delivery_id(subscriber, notice_id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(subscriber.secret.get_secret_value(), timestamp, body),
        NOTICE_HEADER: notice_id,
        ATTEMPT_HEADER: str(attempt),
    }
    try:
        async with session.post(
            subscriber.url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=policy.timeout_s),
            allow_redirects=False,
        ) as response:
            status = response.status
            if 200 <= status < 300:
                return Attempt(status)
            text = (await response.text(errors="replace"))[:200]
            reason = f"HTTP {status}" + (f": {text}" if text else "")
            wait = retry_after_s(response.headers.get("Retry-After"), clock())
            return Attempt(status, subscriber.redact(reason), wait)
    except (aiohttp.ClientError, TimeoutError) as error:
        return Attempt(None, subscriber.redact(f"{type(error).__name__}: {error}".rstrip(": ")))


@dataclass
class Lane:
    """One subscriber's own line: its notices in order, its retries and its waits.

    `resume_at` (on the event loop's clock) is when the subscriber may be asked
    again: after a failed attempt, the backoff or what its Retry-After asked,
    whichever is longer, never more than the longest wait. A subscriber that asks
    for more than that has the notice parked at once. `down` is set when a notice
    was given up: until the subscriber takes one again, each notice gets a single
    attempt, so that a subscriber that is gone goes through its line at one request
    per notice (each parked) rather than a whole retry schedule each.
    """

    subscriber: Subscriber
    queue: asyncio.Queue[Delivery] = field(default_factory=asyncio.Queue)
    resume_at: float = 0.0
    down: bool = False

    async def offer(
        self,
        session: aiohttp.ClientSession,
        notice_id: str,
        body: bytes,
        policy: RetryPolicy,
        clock: Clock = utc_now,
    ) -> Outcome:
        """Offer one notice until the subscriber takes it, refuses it, or is given up."""
        subscriber = self.subscriber
        delivery = delivery_id(subscriber, notice_id)
        loop = asyncio.get_running_loop()
        allowed = 1 if self.down else policy.max_attempts
        result = Attempt(None, "not attempted")
        number = 0
        reason = ""
        for number in range(1, allowed + 1):
            await asyncio.sleep(max(0.0, self.resume_at - loop.time()))
            result = await post(session, subscriber, notice_id, body, number, policy, clock)
            if result.delivered:
                self.down = False
                return Outcome(subscriber, delivery, True, number, result.status)
            if result.refused:
                return Outcome(
                    subscriber, delivery, False, number, result.status, result.reason, True
                )
            reason = result.reason
            log.info("webhook %s: attempt %d failed: %s", subscriber.name, number, reason)
            self.resume_at = loop.time() + policy.delay_s(number, result.retry_after)
            if result.retry_after is not None and result.retry_after > policy.max_backoff_s:
                reason += (
                    f"; Retry-After asks for {result.retry_after:.0f} s,"
                    f" more than the longest wait ({policy.max_backoff_s:g} s)"
                )
                break
        self.down = True
        return Outcome(subscriber, delivery, False, number, result.status, reason)


def parked(outcome: Outcome, notice: EscalationNotice, now: datetime) -> Outgoing:
    """The WebhookFailed for a notice given up: the notice travels with it, the URL
    only as its label (it may hold a token)."""
    failure = WebhookFailed(
        subscriber=outcome.subscriber.name,
        url=outcome.subscriber.label,
        delivery_id=outcome.delivery_id,
        notice_id=notice.notice_id,
        attempts=outcome.attempts,
        last_status=outcome.last_status,
        reason=outcome.reason or "unknown",
        permanent=outcome.permanent,
        notice=notice,
        failed_at=now,
    )
    return Outgoing.of(WEBHOOKS_DEADLETTER, notice.notice_id, failure)


@dataclass(frozen=True)
class Delivery:
    """A notice for one subscriber, and where it was read: its offset is committed once
    every subscriber that wants it is done with it. `epoch` tells a notice read before
    its partition went to another deliverer (see Unfinished)."""

    notice: EscalationNotice
    body: bytes
    source: TopicPartition
    offset: int
    epoch: int


class Unfinished:
    """The notices read and not yet done with by every subscriber, per partition.

    A partition is committed up to its first unfinished offset: everything before
    it was delivered or parked. Offsets are read in order, so each partition's
    open offsets are kept in insertion order, the first one the lowest.
    """

    def __init__(self) -> None:
        self._open: dict[TopicPartition, dict[int, int]] = {}  # offset → subscribers at it
        self._next: dict[TopicPartition, int] = {}
        self._epochs: dict[TopicPartition, int] = {}

    def read(self, tp: TopicPartition, offset: int, deliveries: int) -> int:
        """Note that `offset` was read and handed to `deliveries` subscribers; its epoch."""
        self._next[tp] = offset + 1
        if deliveries:
            self._open.setdefault(tp, {})[offset] = deliveries
        return self._epochs.get(tp, 0)

    def current(self, delivery: Delivery) -> bool:
        """Whether `delivery` still belongs here: its partition was not handed over since."""
        tp = delivery.source
        return tp in self._next and delivery.epoch == self._epochs.get(tp, 0)

    def finish(self, delivery: Delivery) -> None:
        if not self.current(delivery):
            return
        offsets = self._open.get(delivery.source, {})
        left = offsets.get(delivery.offset, 0) - 1
        if left > 0:
            offsets[delivery.offset] = left
        else:
            offsets.pop(delivery.offset, None)

    def committable(self) -> dict[TopicPartition, int]:
        """Per partition, the offset to commit: its first unfinished one, or past the last read."""
        return {tp: next(iter(self._open.get(tp) or {}), end) for tp, end in self._next.items()}

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """The partitions went to another deliverer: what is queued for them is not ours."""
        for tp in partitions:
            self._open.pop(tp, None)
            self._next.pop(tp, None)
            self._epochs[tp] = self._epochs.get(tp, 0) + 1

    def __len__(self) -> int:
        return sum(len(offsets) for offsets in self._open.values())


class Deliverer:
    """Hands each notice to the lane of every subscriber that wants it, and never
    waits on one: a subscriber's retries and waits are its lane's alone, so the
    consumer keeps polling (and stays in its group) and the others keep receiving.
    """

    def __init__(
        self,
        subscribers: Sequence[Subscriber],
        policy: RetryPolicy,
        session: aiohttp.ClientSession,
        client: AIOKafkaProducer,
        *,
        on_outcome: Callable[[Outcome], None] | None = None,
        clock: Clock = utc_now,
        skips: Skips | None = None,
    ) -> None:
        self.lanes = [Lane(subscriber) for subscriber in subscribers]
        self.policy = policy
        self.session = session
        self.client = client
        self.on_outcome = on_outcome
        self.clock = clock
        self.skips = skips if skips is not None else Skips("webhook deliverer")
        self.unfinished = Unfinished()
        self._committed: dict[TopicPartition, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def take(self, record: RawRecord) -> None:
        """Queue a record of alerts.escalations for the subscribers that want it."""
        tp = TopicPartition(record.topic, record.partition)
        notice = self.skips.decode(record, EscalationNotice, key_of=lambda n: n.dyad)
        wanted = [] if notice is None else [ln for ln in self.lanes if ln.subscriber.wants(notice)]
        epoch = self.unfinished.read(tp, record.offset, len(wanted))
        for lane in wanted:
            assert notice is not None
            lane.queue.put_nowait(Delivery(notice, record.value, tp, record.offset, epoch))

    async def _serve(self, lane: Lane) -> None:
        while True:
            delivery = await lane.queue.get()
            if not self.unfinished.current(delivery):
                continue  # its partition is another deliverer's now, and so is the notice
            notice = delivery.notice
            outcome = await lane.offer(
                self.session, notice.notice_id, delivery.body, self.policy, self.clock
            )
            if not outcome.delivered:
                # Parked before it counts as done: a failed publish ends the deliverer,
                # and the notice, not committed, is offered again when it restarts.
                await publish(self.client, [parked(outcome, notice, self.clock())])
                log.warning(
                    "webhook %s: notice %s parked after %d attempt(s): %s",
                    lane.subscriber.name,
                    notice.notice_id,
                    outcome.attempts,
                    outcome.reason,
                )
            self.unfinished.finish(delivery)
            if self.on_outcome is not None:
                self.on_outcome(outcome)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._serve(lane), name=f"webhook {lane.subscriber.name}")
            for lane in self.lanes
        ]

    def check(self) -> None:
        """Raise what ended a lane (a dead-letter record the broker would not take)."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def stop(self) -> None:
        """Stop every lane where it is: what they had not finished is not committed."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def commit(self, consumer: AIOKafkaConsumer) -> None:
        """Commit every partition up to its first notice not yet done with."""
        offsets = {
            tp: offset
            for tp, offset in self.unfinished.committable().items()
            if self._committed.get(tp) != offset
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as error:  # a rebalance under way: the next owner goes on
            log.warning("webhook deliverer: commit of %s failed: %s", offsets, error)
            return
        self._committed.update(offsets)

    async def hand_over(self, consumer: AIOKafkaConsumer, revoked: list[TopicPartition]) -> None:
        """The group gives `revoked` to another deliverer: commit what is done, and leave
        the rest of their notices to it."""
        await self.commit(consumer)
        self.unfinished.forget(revoked)
        for tp in revoked:
            self._committed.pop(tp, None)

    def handover(self, consumer: AIOKafkaConsumer) -> ConsumerRebalanceListener:
        """What to do when the group moves partitions between deliverers."""
        return _Handover(self, consumer)


class _Handover(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, deliverer: Deliverer, consumer: AIOKafkaConsumer) -> None:
        self.deliverer = deliverer
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.deliverer.hand_over(self.consumer, revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        shown = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(assigned)) or "nothing"
        log.info("webhook deliverer: joined its group, reading %s", shown)


async def run_delivery(
    settings: Settings,
    subscribers: Sequence[Subscriber],
    stop: asyncio.Event,
    *,
    group_id: str,
    from_beginning: bool = False,
    on_outcome: Callable[[Outcome], None] | None = None,
    skips: Skips | None = None,
) -> None:
    """Consume alerts.escalations in a consumer group until `stop`.

    The loop only reads, queues and commits, every half second at most: a
    subscriber that waits (backoff, Retry-After) waits in its own lane.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        session_timeout_ms=int(settings.session_timeout_s * 1000),
        rebalance_timeout_ms=int(settings.rebalance_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval_s * 1000),
        max_poll_interval_ms=int(settings.max_poll_interval_s * 1000),
    )
    async with producer(settings) as client, aiohttp.ClientSession() as session:
        deliverer = Deliverer(
            subscribers,
            RetryPolicy.from_settings(settings),
            session,
            client,
            on_outcome=on_outcome,
            skips=skips,
        )
        consumer.subscribe([ALERTS_ESCALATIONS.name], listener=deliverer.handover(consumer))
        await consumer.start()
        deliverer.start()
        try:
            while not stop.is_set():
                deliverer.check()
                batches = await consumer.getmany(timeout_ms=500)
                for tp, messages in batches.items():
                    for message in messages:
                        deliverer.take(
                            RawRecord(
                                topic=tp.topic,
                                partition=tp.partition,
                                offset=message.offset,
                                key=message.key,
                                value=message.value if message.value is not None else b"",
                            )
                        )
                await deliverer.commit(consumer)
        finally:
            await deliverer.stop()
            await deliverer.commit(consumer)
            await consumer.stop()
