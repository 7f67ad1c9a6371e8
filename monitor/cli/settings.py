"""The options bound to Settings fields, declared once and grouped in families.

A command offers those that mean something to it and accepts the rest of their
family hidden (see monitor/cli/options.py).
"""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.options import option
from schemas import LEVELS


def _check_networks(
    _context: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    from monitor.collect.guard import NetworkPolicyError, parse_networks

    try:
        parse_networks(value)
    except NetworkPolicyError as error:
        raise click.BadParameter(str(error)) from None
    return value


# -- Kafka ----------------------------------------------------------------------

BOOTSTRAP = option(
    "--bootstrap",
    env="MONITOR_KAFKA_BOOTSTRAP",
    setting="bootstrap",
    help="Kafka bootstrap servers, comma-separated.",
)
PARTITIONS = option(
    "--partitions",
    env="MONITOR_PARTITIONS",
    setting="partitions",
    type=click.IntRange(min=1),
    help="Partitions of news.items and news.tagged when this run creates them.",
)
IDEMPOTENCE = option(
    "--idempotence/--no-idempotence",
    env="MONITOR_KAFKA_IDEMPOTENCE",
    setting="idempotence",
    help="Idempotent producers: on for Apache Kafka; the embedded broker lacks them.",
)
APP_ID = option(
    "--app-id",
    env="MONITOR_APP_ID",
    setting="app_id",
    help="Faust application id: the workers' consumer group and table topic prefix.",
)
FETCH_MAX_WAIT = option(
    "--fetch-max-wait",
    env="MONITOR_FETCH_MAX_WAIT",
    setting="fetch_max_wait_ms",
    type=click.IntRange(min=1, max=10_000),
    help="Milliseconds a worker's fetch waits at the broker for new records:"
    " a bound on each hop's latency.",
)
REBALANCE_TIMEOUT = option(
    "--rebalance-timeout",
    env="MONITOR_REBALANCE_TIMEOUT",
    setting="rebalance_timeout_s",
    type=click.FloatRange(min=1),
    help="Seconds; joining a consumer group takes about half of it.",
)
SESSION_TIMEOUT = option(
    "--session-timeout",
    env="MONITOR_SESSION_TIMEOUT",
    setting="session_timeout_s",
    type=click.FloatRange(min=1),
    help="Seconds without a heartbeat before a group member counts as gone.",
)
KAFKA = (
    BOOTSTRAP,
    PARTITIONS,
    IDEMPOTENCE,
    APP_ID,
    FETCH_MAX_WAIT,
    REBALANCE_TIMEOUT,
    SESSION_TIMEOUT,
)

# -- Feeds and collectors (docs/collectors.md) ------------------------------------

FEEDS = option(
    "--feeds",
    env="MONITOR_FEEDS",
    setting="feeds",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML feed catalogue: one [[feeds]] table per feed.",
)
INTERVAL = option(
    "--interval",
    env="MONITOR_POLL_INTERVAL",
    setting="poll_interval_s",
    type=click.FloatRange(min=1),
    help="Seconds between polling rounds.",
)
TICK_INTERVAL = option(
    "--tick-interval",
    env="MONITOR_TICK_INTERVAL",
    setting="tick_interval_s",
    type=click.FloatRange(min=1),
    help="Seconds between the clock ticks the collector records on news.items"
    " (time passing, for levels to fall when no news comes).",
)
FETCH_TIMEOUT = option(
    "--fetch-timeout",
    env="MONITOR_FETCH_TIMEOUT",
    setting="fetch_timeout_s",
    type=click.FloatRange(min=0.1),
    help="Seconds one feed fetch may take in all.",
)
MAX_FEED_BYTES = option(
    "--max-feed-bytes",
    env="MONITOR_MAX_FEED_BYTES",
    setting="max_feed_bytes",
    type=click.IntRange(min=1024),
    help="Largest feed body read, after decompression.",
)
ALLOW_NETWORKS = option(
    "--allow-network",
    "allow_networks",
    env="MONITOR_ALLOW_NETWORKS",
    setting="allow_networks",
    multiple=True,
    callback=_check_networks,
    metavar="CIDR",
    show_default=False,
    help="Let feeds reach this private/loopback network (repeatable; the variable "
    "takes several, space- or comma-separated). Default: public addresses only.",
)
PER_HOST = option(
    "--per-host",
    env="MONITOR_PER_HOST_CONCURRENCY",
    setting="per_host_concurrency",
    type=click.IntRange(min=1),
    help="Requests in flight to one host at most.",
)
FETCH_CONCURRENCY = option(
    "--fetch-concurrency",
    env="MONITOR_FETCH_CONCURRENCY",
    setting="fetch_concurrency",
    type=click.IntRange(min=1),
    help="Requests in flight in all at most.",
)
MAX_REDIRECTS = option(
    "--max-redirects",
    env="MONITOR_MAX_REDIRECTS",
    setting="max_redirects",
    type=click.IntRange(min=0),
    help="Redirect hops followed per fetch.",
)
MAX_ITEMS = option(
    "--max-items",
    env="MONITOR_MAX_ITEMS_PER_FEED",
    setting="max_items_per_feed",
    type=click.IntRange(min=1),
    help="Items read from one feed document at most.",
)
STALE_AFTER_SILENCE = option(
    "--stale-after-silence",
    env="MONITOR_STALE_AFTER_SILENCE",
    setting="stale_after_silence_s",
    type=click.FloatRange(min=1),
    help="Seconds without a new item before a feed raises FeedStale"
    " (a feed's stale_after_hours wins).",
)
USER_AGENT = option(
    "--user-agent",
    env="MONITOR_USER_AGENT",
    setting="user_agent",
    help="User-Agent sent to feeds (default names the project and its URL).",
)
FEED = (
    FEEDS,
    INTERVAL,
    TICK_INTERVAL,
    FETCH_TIMEOUT,
    MAX_FEED_BYTES,
    ALLOW_NETWORKS,
    PER_HOST,
    FETCH_CONCURRENCY,
    MAX_REDIRECTS,
    MAX_ITEMS,
    STALE_AFTER_SILENCE,
    USER_AGENT,
)
# What fetching a feed once needs: no schedule, no ticks, no memory of silence.
FETCHING = tuple(o for o in FEED if o not in (INTERVAL, TICK_INTERVAL, STALE_AFTER_SILENCE))

# -- The stream processors -----------------------------------------------------

RULES = option(
    "--rules",
    "rules_dir",
    env="MONITOR_RULES_DIR",
    setting="rules_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory of rule files (default: the bundled rules).",
)
SCORING = option(
    "--scoring",
    "scoring_file",
    env="MONITOR_SCORING",
    setting="scoring_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Escalation scoring file (default: the bundled monitor/escalation/scoring.toml).",
)
DATA_DIR = option(
    "--data-dir",
    env="MONITOR_DATA_DIR",
    setting="data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Working directory: Faust's, the embedded broker's journal (monitor run),"
    " and the broker's cluster id last seen (brokers.json: resets are noticed across restarts).",
)
WEB_PORT = option(
    "--web-port",
    env="MONITOR_WEB_PORT",
    setting="web_port",
    type=click.IntRange(1, 65535),
    help="Serve Prometheus /metrics on this port (a worker also serves Faust's web views"
    " there); off by default.",
)
WEB_HOST = option(
    "--web-host",
    env="MONITOR_WEB_HOST",
    setting="web_host",
    help="Address the web port listens on: this machine only by default; 0.0.0.0 for"
    " every interface (in a container).",
)
TABLE_VIEWS = option(
    "--table-views/--no-table-views",
    env="MONITOR_WEB_TABLE_VIEWS",
    setting="web_table_views",
    help="Also serve Faust's /table and /router views on the web port: they show the"
    " whole escalation state, key by key.",
)

# -- When something needs attention: `monitor status`, the dashboard ---------------

STALE_AFTER = option(
    "--stale-after",
    env="MONITOR_STALE_AFTER",
    setting="stale_after_unread_s",
    type=click.FloatRange(min=1),
    help="Seconds without a successful poll after which a feed is stale.",
)
MAX_LAG = option(
    "--max-lag",
    env="MONITOR_MAX_LAG",
    setting="max_lag",
    type=click.IntRange(min=0),
    help="Records a consumer group may be behind before it needs attention.",
)
ALERT_LEVEL = option(
    "--alert-level",
    env="MONITOR_ALERT_LEVEL",
    setting="alert_level",
    type=click.Choice(LEVELS[1:]),
    help="A dyad at this level or above needs attention.",
)
DEAD_LETTER_WINDOW = option(
    "--dead-letter-window",
    env="MONITOR_DEAD_LETTER_WINDOW",
    setting="dead_letter_window_s",
    type=click.FloatRange(min=0),
    help="Seconds: dead letters younger than this need attention.",
)
THRESHOLDS = (STALE_AFTER, MAX_LAG, ALERT_LEVEL, DEAD_LETTER_WINDOW)

# -- Subscribers: webhook retries, digests ---------------------------------------------

MAX_ATTEMPTS = option(
    "--max-attempts",
    env="MONITOR_WEBHOOK_MAX_ATTEMPTS",
    setting="webhook_max_attempts",
    type=click.IntRange(min=1),
    help="Attempts per subscriber and notice before it is parked on the dead-letter topic.",
)
BACKOFF = option(
    "--backoff",
    env="MONITOR_WEBHOOK_BACKOFF",
    setting="webhook_backoff_s",
    type=click.FloatRange(min=0),
    help="Seconds before the second attempt; doubles with each further one.",
)
MAX_BACKOFF = option(
    "--max-backoff",
    env="MONITOR_WEBHOOK_MAX_BACKOFF",
    setting="webhook_max_backoff_s",
    type=click.FloatRange(min=0),
    help="Longest wait between two attempts, in seconds: a subscriber whose Retry-After"
    " asks for more has the notice parked at once.",
)
REQUEST_TIMEOUT = option(
    "--request-timeout",
    env="MONITOR_WEBHOOK_TIMEOUT",
    setting="webhook_timeout_s",
    type=click.FloatRange(min=0.1),
    help="Seconds one POST may take.",
)
MAX_POLL_INTERVAL = option(
    "--max-poll-interval",
    env="MONITOR_MAX_POLL_INTERVAL",
    setting="max_poll_interval_s",
    type=click.FloatRange(min=1),
    help="Seconds without a poll before a deliverer leaves its consumer group"
    " (Kafka's max.poll.interval.ms); it polls every half second while subscribers wait.",
)
RETRIES = (MAX_ATTEMPTS, BACKOFF, MAX_BACKOFF, REQUEST_TIMEOUT)

DIGEST_PERIOD = option(
    "--period",
    env="MONITOR_DIGEST_PERIOD",
    setting="digest_period_s",
    type=click.FloatRange(min=60),
    help="Seconds a digest covers; periods are aligned to midnight UTC (epoch).",
)
