"""Webhook delivery: POST each escalation notice to the subscribers who want it.

Every request is signed so that a receiver can tell it came from us and has
not been replayed, and carries a delivery id that stays the same across
retries and redeliveries, so that a receiver can de-duplicate:

    X-Monitor-Delivery:  d-…            one id per (subscriber, notice)
    X-Monitor-Timestamp: 1735120800     Unix seconds when this attempt was signed
    X-Monitor-Signature: sha256=<hex>   HMAC-SHA256(secret, f"{timestamp}." + body)

The body is the notice exactly as it is on `alerts.escalations` (it validates
against schemas/json/EscalationNotice.json). A failing subscriber is retried
with exponential backoff; what it still refuses is parked on
`alerts.webhooks.deadletter` as a WebhookFailed with the reason, and delivery
goes on. Offsets are committed once every subscriber is done with a notice:
after a crash a notice may be POSTed again, with the same delivery id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import tomllib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from monitor.clock import Clock, utc_now
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.kafka import producer, publish
from monitor.records import Outgoing
from monitor.topics import ALERTS_ESCALATIONS, WEBHOOKS_DEADLETTER
from schemas import LEVELS, SIGNAL_IDS, EscalationNotice, Level, WebhookFailed, decode

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


@dataclass(frozen=True)
class Subscriber:
    name: str
    url: str
    secret: bytes
    min_level: Level = "calm"
    signals: frozenset[str] = frozenset()  # empty: every signal

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
        if not url.startswith(("http://", "https://")):
            raise WebhookConfigError(f"{where}: url must be http or https, not {url!r}")
        name = str(entry.get("name") or url)
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
                secret=secret.encode("utf-8"),
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


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return float(headers.get("Retry-After", ""))
    except ValueError:
        return None


async def deliver(
    session: aiohttp.ClientSession,
    subscriber: Subscriber,
    notice_id: str,
    body: bytes,
    policy: RetryPolicy,
    clock: Clock = utc_now,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Outcome:
    """POST `body` until the subscriber takes it (2xx), refuses it (4xx), or attempts run out."""
    delivery = delivery_id(subscriber, notice_id)
    status: int | None = None
    reason = ""
    for attempt in range(1, policy.max_attempts + 1):
        timestamp = int(clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            DELIVERY_HEADER: delivery,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(subscriber.secret, timestamp, body),
            NOTICE_HEADER: notice_id,
            ATTEMPT_HEADER: str(attempt),
        }
        retry_after = None
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
                    return Outcome(subscriber, delivery, True, attempt, status)
                text = (await response.text(errors="replace"))[:200]
                reason = f"HTTP {status}" + (f": {text}" if text else "")
                if not _retryable(status):
                    return Outcome(subscriber, delivery, False, attempt, status, reason, True)
                retry_after = _retry_after(response.headers)
        except (aiohttp.ClientError, TimeoutError) as error:
            status = None
            reason = f"{type(error).__name__}: {error}".rstrip(": ")
        log.info("webhook %s: attempt %d failed: %s", subscriber.name, attempt, reason)
        if attempt < policy.max_attempts:
            await sleep(policy.delay_s(attempt, retry_after))
    return Outcome(subscriber, delivery, False, policy.max_attempts, status, reason)


def parked(outcome: Outcome, notice: EscalationNotice, now: datetime) -> Outgoing:
    failure = WebhookFailed(
        subscriber=outcome.subscriber.name,
        url=outcome.subscriber.url,
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


async def deliver_notice(
    session: aiohttp.ClientSession,
    client: AIOKafkaProducer,
    subscribers: Sequence[Subscriber],
    body: bytes,
    policy: RetryPolicy,
) -> list[Outcome]:
    """Every interested subscriber at once; the failures parked before this returns."""
    notice = decode(EscalationNotice, body)
    wanted = [s for s in subscribers if s.wants(notice)]
    outcomes = await asyncio.gather(
        *(deliver(session, s, notice.notice_id, body, policy) for s in wanted)
    )
    failed = [o for o in outcomes if not o.delivered]
    if failed:
        now = utc_now()
        await publish(client, [parked(o, notice, now) for o in failed])
        for outcome in failed:
            log.warning(
                "webhook %s: notice %s parked after %d attempt(s): %s",
                outcome.subscriber.name,
                notice.notice_id,
                outcome.attempts,
                outcome.reason,
            )
    return list(outcomes)


async def run_delivery(
    settings: Settings,
    subscribers: Sequence[Subscriber],
    stop: asyncio.Event,
    *,
    group_id: str,
    from_beginning: bool = False,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> None:
    """Consume alerts.escalations in a consumer group until `stop`; commit per notice."""
    policy = RetryPolicy.from_settings(settings)
    consumer = AIOKafkaConsumer(
        ALERTS_ESCALATIONS.name,
        bootstrap_servers=settings.bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        session_timeout_ms=int(settings.session_timeout_s * 1000),
        rebalance_timeout_ms=int(settings.rebalance_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval_s * 1000),
    )
    await consumer.start()
    try:
        async with producer(settings) as client, aiohttp.ClientSession() as session:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for tp, messages in batches.items():
                    for message in messages:
                        body = message.value or b""
                        try:
                            outcomes = await deliver_notice(
                                session, client, subscribers, body, policy
                            )
                        except ValueError as error:  # not a notice: nothing to deliver
                            log.warning("skipping undecodable notice: %s", error)
                            outcomes = []
                        for outcome in outcomes:
                            if on_outcome is not None:
                                on_outcome(outcome)
                        # This notice only: a commit of the whole batch would skip
                        # the rest of it after a crash.
                        await consumer.commit({tp: message.offset + 1})
    finally:
        await consumer.stop()
