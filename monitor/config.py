"""One frozen settings object, built at the entry point and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

PACKAGE_DIR = Path(__file__).parent
DEFAULT_FEEDS = PACKAGE_DIR / "feeds.toml"
SAMPLES_DIR = PACKAGE_DIR / "samples"


@dataclass(frozen=True)
class Settings:
    bootstrap: str = "127.0.0.1:9092"
    app_id: str = "baku-moscow-monitor"
    # Partitions of the item streams; the per-dyad stream has one partition per
    # dyad key space and its table's changelog must match it (see topics.py).
    partitions: int = 3
    replication_factor: int = 1
    # Tansu has no InitProducerId, so idempotence is off on the embedded broker
    # and should be switched on against Apache Kafka.
    idempotence: bool = False
    # Faust's defaults (60 s) make joining a group take 30 s; fine in production,
    # painful in a demo. Compose sets production values through the environment.
    rebalance_timeout_s: float = 6.0
    session_timeout_s: float = 6.0
    heartbeat_interval_s: float = 1.0
    feeds: Path = DEFAULT_FEEDS
    poll_interval_s: float = 900.0
    fetch_timeout_s: float = 30.0
    max_feed_bytes: int = 10 * 1024 * 1024
    web_port: int | None = None
    # Faust's working directory (table metadata); tables themselves live in
    # memory and are restored from their changelog topics at start-up.
    data_dir: Path = field(default_factory=lambda: Path(".monitor-data"))

    def with_bootstrap(self, bootstrap: str) -> Settings:
        return replace(self, bootstrap=bootstrap)
