"""One frozen settings object, built at the entry point and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from schemas import Level

PACKAGE_DIR = Path(__file__).parent
DEFAULT_FEEDS = PACKAGE_DIR / "feeds.toml"
SAMPLES_DIR = PACKAGE_DIR / "samples"


@dataclass(frozen=True)
class Settings:
    bootstrap: str = "127.0.0.1:9092"
    app_id: str = "baku-moscow-monitor"
    # Partitions of news.items and news.tagged. One by default: news comes in far
    # slower than one tagger tags it, and with one partition the escalator reads
    # items in the order they were published, which is what makes a replay give the
    # same notices. More partitions tag in parallel; disorder beyond the allowed
    # lateness then counts late (see README, "Order").
    partitions: int = 1
    replication_factor: int = 1
    # Tansu has no InitProducerId, so idempotence is off on the embedded broker
    # and should be switched on against Apache Kafka.
    idempotence: bool = False
    # How long the workers' fetches wait at the broker when there is nothing new: a
    # bound on each hop's latency (Faust's own wait is fixed, and long).
    fetch_max_wait_ms: int = 100
    # Joining a group takes about half the rebalance timeout, and Faust's defaults make
    # that slow: fine in production, painful in a demo. Compose sets production values
    # through the environment.
    rebalance_timeout_s: float = 6.0
    session_timeout_s: float = 6.0
    heartbeat_interval_s: float = 1.0
    feeds: Path = DEFAULT_FEEDS
    poll_interval_s: float = 900.0
    # How often the collector records on news.items that time passed (ClockTicked):
    # the escalator's clock, so a level falls during a quiet night too.
    tick_interval_s: float = 300.0
    fetch_timeout_s: float = 30.0
    max_feed_bytes: int = 10 * 1024 * 1024
    # Collectors (see docs/collectors.md). Networks a feed may reach besides public
    # addresses, as CIDRs: nothing private, loopback or link-local unless listed.
    allow_networks: tuple[str, ...] = ()
    per_host_concurrency: int = 2
    fetch_concurrency: int = 32
    max_redirects: int = 5
    max_items_per_feed: int = 500
    # Silence (no new item) after which the collector says a feed went quiet: FeedStale.
    # A feed's stale_after_hours wins.
    stale_after_silence_s: float = 24 * 3600.0
    # None: the collector's own, which names the project and where to reach it.
    user_agent: str | None = None
    web_port: int | None = None
    # Where the web port listens: this machine only unless told otherwise (a container
    # says 0.0.0.0, behind its own network and published ports).
    web_host: str = "127.0.0.1"
    # Faust's /table and /router views show the whole escalation state, key by key:
    # served only when asked for.
    web_table_views: bool = False
    # Faust's working directory (table metadata); tables themselves live in
    # memory and are restored from their changelog topics at start-up.
    data_dir: Path = field(default_factory=lambda: Path(".monitor-data"))
    # None: the bundled tagging rules and escalation scoring.
    rules_dir: Path | None = None
    scoring_file: Path | None = None
    # When something needs attention (`monitor status`, the dashboard): a feed not read
    # successfully for this long (another staleness than the collector's silence), a
    # consumer group this many records behind, a dyad at this level or above, a dead
    # letter younger than this.
    stale_after_unread_s: float = 3600.0
    max_lag: int = 1000
    alert_level: Level = "high"
    dead_letter_window_s: float = 24 * 3600.0
    # Webhook delivery: attempts per subscriber and notice before it is parked on the
    # dead-letter topic, the wait before the second (doubling with each further one,
    # up to the longest), and how long one POST may take.
    webhook_max_attempts: int = 6
    webhook_backoff_s: float = 2.0
    webhook_max_backoff_s: float = 300.0
    webhook_timeout_s: float = 10.0
    # The deliverer leaves its consumer group when it has not polled the broker for this
    # long (Kafka's max.poll.interval.ms). It polls every half second whatever its
    # subscribers do: a subscriber's wait is its own, not the consumer's.
    max_poll_interval_s: float = 300.0
    # The period a digest covers, aligned to the epoch (daily: midnight to midnight UTC).
    digest_period_s: float = 24 * 3600.0
