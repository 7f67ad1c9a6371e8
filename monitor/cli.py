"""One entry point: `monitor demo | run | collect | worker | alerts | broker | topics`.

Every option has an environment variable (shown in `--help`); the settings
object is built here, once, and passed down.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from monitor.broker import EmbeddedBroker
from monitor.collect.catalogue import load_catalogue
from monitor.config import DEFAULT_FEEDS, Settings
from monitor.errors import MonitorError
from monitor.tagging.commands import evaluate_command, rules_option, tag_command
from monitor.topics import ALERTS_ESCALATIONS, all_topics, ensure_topics
from schemas import EscalationNotice, decode

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("monitor")


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    try:
        return asyncio.run(coroutine)
    except MonitorError as error:
        raise click.ClickException(str(error)) from error


def kafka_options(command: F) -> F:
    """The options of every command that talks to Kafka."""
    defaults = Settings()
    options = [
        click.option(
            "--bootstrap",
            envvar="MONITOR_KAFKA_BOOTSTRAP",
            show_envvar=True,
            default=defaults.bootstrap,
            show_default=True,
            help="Kafka bootstrap servers, comma-separated.",
        ),
        click.option(
            "--partitions",
            envvar="MONITOR_PARTITIONS",
            show_envvar=True,
            type=click.IntRange(min=1),
            default=defaults.partitions,
            show_default=True,
            help="Partitions of news.items and news.tagged when this run creates them.",
        ),
        click.option(
            "--idempotence/--no-idempotence",
            envvar="MONITOR_KAFKA_IDEMPOTENCE",
            show_envvar=True,
            default=defaults.idempotence,
            show_default=True,
            help="Idempotent producers: on for Apache Kafka; the embedded broker lacks them.",
        ),
        click.option(
            "--app-id",
            envvar="MONITOR_APP_ID",
            show_envvar=True,
            default=defaults.app_id,
            show_default=True,
            help="Faust application id: the consumer group and table topic prefix.",
        ),
        click.option(
            "--fetch-max-wait",
            envvar="MONITOR_FETCH_MAX_WAIT",
            show_envvar=True,
            type=click.IntRange(min=1, max=10_000),
            default=defaults.fetch_max_wait_ms,
            show_default=True,
            help="Milliseconds a worker's fetch waits at the broker for new records:"
            " a bound on each hop's latency.",
        ),
        click.option(
            "--rebalance-timeout",
            envvar="MONITOR_REBALANCE_TIMEOUT",
            show_envvar=True,
            type=click.FloatRange(min=1),
            default=defaults.rebalance_timeout_s,
            show_default=True,
            help="Seconds; joining a group takes about half of it.",
        ),
        click.option(
            "--session-timeout",
            envvar="MONITOR_SESSION_TIMEOUT",
            show_envvar=True,
            type=click.FloatRange(min=1),
            default=defaults.session_timeout_s,
            show_default=True,
            help="Seconds without a heartbeat before a worker counts as gone.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def feed_options(command: F) -> F:
    defaults = Settings()
    options = [
        click.option(
            "--feeds",
            envvar="MONITOR_FEEDS",
            show_envvar=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=DEFAULT_FEEDS,
            show_default=True,
            help="TOML feed catalogue: one [[feeds]] table per feed.",
        ),
        click.option(
            "--interval",
            envvar="MONITOR_POLL_INTERVAL",
            show_envvar=True,
            type=click.FloatRange(min=1),
            default=defaults.poll_interval_s,
            show_default=True,
            help="Seconds between polling rounds.",
        ),
        click.option(
            "--tick-interval",
            envvar="MONITOR_TICK_INTERVAL",
            show_envvar=True,
            type=click.FloatRange(min=1),
            default=defaults.tick_interval_s,
            show_default=True,
            help="Seconds between the clock ticks the collector records on news.items"
            " (time passing, for levels to fall when no news comes).",
        ),
        click.option(
            "--fetch-timeout",
            envvar="MONITOR_FETCH_TIMEOUT",
            show_envvar=True,
            type=click.FloatRange(min=0.1),
            default=defaults.fetch_timeout_s,
            show_default=True,
            help="Seconds one feed fetch may take in all.",
        ),
        click.option(
            "--max-feed-bytes",
            envvar="MONITOR_MAX_FEED_BYTES",
            show_envvar=True,
            type=click.IntRange(min=1024),
            default=defaults.max_feed_bytes,
            show_default=True,
            help="Largest feed body read, after decompression.",
        ),
        *collector_options(defaults),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _check_networks(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    from monitor.collect.guard import NetworkPolicyError, parse_networks

    try:
        parse_networks(value)
    except NetworkPolicyError as error:
        raise click.BadParameter(str(error)) from None
    return value


def collector_options(defaults: Settings) -> list[Callable[[F], F]]:
    """Safety and politeness of the collectors (docs/collectors.md)."""
    return [
        click.option(
            "--allow-network",
            "allow_networks",
            envvar="MONITOR_ALLOW_NETWORKS",
            show_envvar=True,
            multiple=True,
            callback=_check_networks,
            metavar="CIDR",
            help="Let feeds reach this private/loopback network (repeatable; the variable "
            "takes several, space- or comma-separated). Default: public addresses only.",
        ),
        click.option(
            "--per-host",
            envvar="MONITOR_PER_HOST_CONCURRENCY",
            show_envvar=True,
            type=click.IntRange(min=1),
            default=defaults.per_host_concurrency,
            show_default=True,
            help="Requests in flight to one host at most.",
        ),
        click.option(
            "--fetch-concurrency",
            envvar="MONITOR_FETCH_CONCURRENCY",
            show_envvar=True,
            type=click.IntRange(min=1),
            default=defaults.fetch_concurrency,
            show_default=True,
            help="Requests in flight in all at most.",
        ),
        click.option(
            "--max-redirects",
            envvar="MONITOR_MAX_REDIRECTS",
            show_envvar=True,
            type=click.IntRange(min=0),
            default=defaults.max_redirects,
            show_default=True,
            help="Redirect hops followed per fetch.",
        ),
        click.option(
            "--max-items",
            envvar="MONITOR_MAX_ITEMS_PER_FEED",
            show_envvar=True,
            type=click.IntRange(min=1),
            default=defaults.max_items_per_feed,
            show_default=True,
            help="Items read from one feed document at most.",
        ),
        click.option(
            "--stale-after-silence",
            envvar="MONITOR_STALE_AFTER_SILENCE",
            show_envvar=True,
            type=click.FloatRange(min=1),
            default=defaults.stale_after_s,
            show_default=True,
            help="Seconds without a new item before a feed raises FeedStale "
            "(a feed's stale_after_hours wins).",
        ),
        click.option(
            "--user-agent",
            envvar="MONITOR_USER_AGENT",
            show_envvar=True,
            default=None,
            help="User-Agent sent to feeds (default names the project and its URL).",
        ),
    ]


def build_settings(**options: Any) -> Settings:
    """The one place where CLI options become settings."""
    mapping = {
        "bootstrap": "bootstrap",
        "partitions": "partitions",
        "idempotence": "idempotence",
        "app_id": "app_id",
        "rebalance_timeout": "rebalance_timeout_s",
        "fetch_max_wait": "fetch_max_wait_ms",
        "session_timeout": "session_timeout_s",
        "feeds": "feeds",
        "interval": "poll_interval_s",
        "tick_interval": "tick_interval_s",
        "fetch_timeout": "fetch_timeout_s",
        "max_feed_bytes": "max_feed_bytes",
        "allow_networks": "allow_networks",
        "per_host": "per_host_concurrency",
        "fetch_concurrency": "fetch_concurrency",
        "max_redirects": "max_redirects",
        "max_items": "max_items_per_feed",
        "stale_after_silence": "stale_after_s",
        "user_agent": "user_agent",
        "web_port": "web_port",
        "data_dir": "data_dir",
        "rules_dir": "rules_dir",
        "scoring_file": "scoring_file",
    }
    values = {mapping[name]: value for name, value in options.items() if name in mapping}
    return replace(Settings(), **values)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--log-level",
    envvar="MONITOR_LOG_LEVEL",
    show_envvar=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="warning",
    show_default=True,
)
def main(log_level: str) -> None:
    """Baku–Moscow tension monitor: news feeds → Kafka → Faust → escalation notices."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@main.command()
@click.option(
    "--port",
    envvar="MONITOR_BROKER_PORT",
    show_envvar=True,
    type=click.IntRange(1, 65535),
    default=9092,
    show_default=True,
)
@click.option(
    "--host",
    envvar="MONITOR_BROKER_HOST",
    show_envvar=True,
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (and advertise).",
)
def broker(port: int, host: str) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, in memory) until Ctrl-C."""
    from monitor.service import stop_on_signals

    async def serve() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        async with EmbeddedBroker(port=port, host=host) as embedded:
            click.echo(f"embedded broker ready at {embedded.bootstrap} (in memory; Ctrl-C stops)")
            await stop.wait()
        click.echo("embedded broker stopped")

    _run(serve())


@main.command()
@kafka_options
def topics(**options: Any) -> None:
    """Create every topic the monitor uses (those that do not exist yet)."""
    settings = build_settings(**options)
    created = _run(ensure_topics(settings))
    for spec in all_topics(settings):
        mark = "created" if spec.name in created else "exists"
        click.echo(f"{spec.name:<45} {spec.partition_count(settings):>3} partitions  {mark}")


@main.command()
@kafka_options
@feed_options
@click.option(
    "--once",
    is_flag=True,
    envvar="MONITOR_COLLECT_ONCE",
    show_envvar=True,
    help="Poll every feed once, then exit (for cron and tests).",
)
@click.option(
    "--web-port",
    envvar="MONITOR_WEB_PORT",
    show_envvar=True,
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve the collector's Prometheus metrics at /metrics on this port (off by default).",
)
def collect(once: bool, **options: Any) -> None:
    """Poll the feed catalogue and publish new items to news.items."""
    from monitor.observe.metrics import collector_metrics
    from monitor.service import run_collector, stop_on_signals

    settings = build_settings(**options)
    feeds = _load_feeds(settings.feeds)

    async def go() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        async with collector_metrics(settings) as metrics:
            await run_collector(
                settings,
                feeds,
                stop,
                once=once,
                on_poll=metrics.on_poll,
                on_round=lambda r: click.echo(_round_line(r)),
            )

    _run(go())


@main.group(name="feeds")
def feeds_group() -> None:
    """The feed catalogue."""


@feeds_group.command(name="check")
@feed_options
@click.option(
    "--no-probe",
    is_flag=True,
    envvar="MONITOR_FEEDS_NO_PROBE",
    show_envvar=True,
    help="Only validate the file; fetch nothing.",
)
def feeds_check(no_probe: bool, **options: Any) -> None:
    """Validate the catalogue, then fetch and parse every feed once (no Kafka).

    Exit status: 0 when every feed answered with a usable feed, 1 when the
    catalogue is invalid, 2 when it is valid but some feeds failed.
    """
    from monitor.clock import utc_now
    from monitor.collect.check import format_probe, probe_feeds
    from monitor.collect.runner import CollectorOptions

    settings = build_settings(**options)
    feeds = _load_feeds(settings.feeds)
    click.echo(f"{settings.feeds}: {len(feeds)} feeds, valid")
    if no_probe:
        return
    polls = _run(probe_feeds(feeds, CollectorOptions.from_settings(settings), utc_now))
    for feed, polled in zip(feeds, polls, strict=True):
        click.echo(format_probe(feed, polled))
    failed = sum(1 for polled in polls if polled.status == "error")
    click.echo(f"{len(feeds) - failed} of {len(feeds)} feeds answered with a usable feed")
    if failed:
        sys.exit(2)


scoring_option = click.option(
    "--scoring",
    "scoring_file",
    envvar="MONITOR_SCORING",
    show_envvar=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Escalation scoring file (default: the bundled monitor/escalation/scoring.toml).",
)


def worker_options(command: F) -> F:
    command = rules_option(command)
    command = scoring_option(command)
    command = click.option(
        "--data-dir",
        envvar="MONITOR_DATA_DIR",
        show_envvar=True,
        type=click.Path(file_okay=False, path_type=Path),
        default=Settings().data_dir,
        show_default=True,
        help="Faust's working directory.",
    )(command)
    return click.option(
        "--web-port",
        envvar="MONITOR_WEB_PORT",
        show_envvar=True,
        type=click.IntRange(1, 65535),
        default=None,
        help="Serve Faust's web views and Prometheus /metrics on this port (off by default).",
    )(command)


@main.command()
@kafka_options
@worker_options
def worker(**options: Any) -> None:
    """Run the stream processors: tagger, escalator."""
    from monitor.service import run_worker, stop_on_signals

    settings = build_settings(**options)

    async def go() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await run_worker(settings, stop)

    _run(go())


@main.command()
@kafka_options
@feed_options
@worker_options
def run(**options: Any) -> None:
    """Collectors and stream processors together, in one process."""
    from monitor.observe.metrics import Metrics
    from monitor.service import run_collector, run_worker, stop_on_signals

    settings = build_settings(**options)
    feeds = _load_feeds(settings.feeds)

    async def go() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        metrics = Metrics()  # one registry: the worker's /metrics shows the collector's too
        await asyncio.gather(
            run_worker(settings, stop, metrics),
            run_collector(
                settings,
                feeds,
                stop,
                on_poll=metrics.on_poll,
                on_round=lambda r: click.echo(_round_line(r)),
            ),
        )

    _run(go())


@main.command()
@kafka_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="MONITOR_ALERTS_JSON",
    show_envvar=True,
    help="One JSON object a line.",
)
@click.option(
    "--from-beginning",
    is_flag=True,
    envvar="MONITOR_ALERTS_FROM_BEGINNING",
    show_envvar=True,
    help="Start at the oldest notice kept (default: only new ones).",
)
@click.option(
    "--follow",
    is_flag=True,
    envvar="MONITOR_ALERTS_FOLLOW",
    show_envvar=True,
    help="Keep waiting for new notices instead of exiting at the end.",
)
def alerts(as_json: bool, from_beginning: bool, follow: bool, **options: Any) -> None:
    """Print escalation notices from alerts.escalations.

    Without flags, waits for new notices (Ctrl-C stops). With --from-beginning,
    prints every notice kept and exits, or keeps waiting with --follow too.
    """
    from monitor.delivery.terminal import format_notice
    from monitor.kafka import read_topic
    from monitor.service import stop_on_signals, until_stopped

    settings = build_settings(**options)

    async def print_notices() -> None:
        # Starting at the end without following would show nothing at all.
        records = read_topic(
            settings,
            ALERTS_ESCALATIONS,
            from_beginning=from_beginning,
            follow=follow or not from_beginning,
        )
        async for record in records:
            try:
                notice = decode(EscalationNotice, record.value)
            except ValueError as error:
                click.echo(
                    f"skipping undecodable record at offset {record.offset}: {error}", err=True
                )
                continue
            if as_json:
                click.echo(json.dumps(notice.model_dump(mode="json"), ensure_ascii=False))
            else:
                click.echo(format_notice(notice) + "\n")

    async def go() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await until_stopped(print_notices(), stop)

    _run(go())


@main.command()
@click.option(
    "--bootstrap",
    envvar="MONITOR_KAFKA_BOOTSTRAP",
    show_envvar=True,
    default=None,
    help="Use this Kafka instead of starting the embedded broker.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    envvar="MONITOR_DEMO_TIMEOUT",
    show_envvar=True,
    default=100.0,
    show_default=True,
    help="Seconds to wait for the pipeline to finish.",
)
def demo(bootstrap: str | None, timeout: float) -> None:
    """The whole pipeline on the bundled sample feeds, on an embedded broker, then exit."""
    from monitor.demo import run_demo

    settings = Settings()
    if bootstrap:
        settings = replace(settings, bootstrap=bootstrap)
    summary = _run(run_demo(settings, click.echo, embedded=bootstrap is None, timeout_s=timeout))
    click.echo("\n" + summary.format())


@main.command()
@kafka_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="MONITOR_STATUS_JSON",
    show_envvar=True,
    help="One JSON document instead of text, for scripts.",
)
@click.option(
    "--stale-after",
    envvar="MONITOR_STALE_AFTER",
    show_envvar=True,
    type=click.FloatRange(min=1),
    default=3600.0,
    show_default=True,
    help="Seconds without a successful poll after which a feed is stale.",
)
@click.option(
    "--max-lag",
    envvar="MONITOR_MAX_LAG",
    show_envvar=True,
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Records a consumer group may be behind before it needs attention.",
)
@click.option(
    "--alert-level",
    envvar="MONITOR_ALERT_LEVEL",
    show_envvar=True,
    type=click.Choice(["elevated", "high", "severe"]),
    default="high",
    show_default=True,
    help="A dyad at this level or above needs attention.",
)
@click.option(
    "--dead-letter-window",
    envvar="MONITOR_DEAD_LETTER_WINDOW",
    show_envvar=True,
    type=click.FloatRange(min=0),
    default=86400.0,
    show_default=True,
    help="Seconds: dead letters younger than this need attention.",
)
@click.option(
    "--timeout",
    envvar="MONITOR_STATUS_TIMEOUT",
    show_envvar=True,
    type=click.FloatRange(min=1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the broker to answer.",
)
def status(
    as_json: bool,
    stale_after: float,
    max_lag: int,
    alert_level: str,
    dead_letter_window: float,
    timeout: float,
    **options: Any,
) -> None:
    """Health at a glance: current level, consumer lag, stale feeds, dead letters.

    Exit status: 0 when all is well, 1 when something needs attention, 2 when
    the broker did not answer.
    """
    from datetime import UTC, datetime, timedelta

    from monitor.broker import BrokerError, wait_until_ready
    from monitor.observe.health import Thresholds, check_health
    from monitor.observe.status import (
        EXIT_ATTENTION,
        EXIT_OK,
        EXIT_UNAVAILABLE,
        format_status,
    )

    settings = build_settings(**options)
    thresholds = Thresholds(
        stale_after=timedelta(seconds=stale_after),
        max_lag=max_lag,
        alert_level=alert_level,  # type: ignore[arg-type]  # click.Choice checked it
        dead_letter_window=timedelta(seconds=dead_letter_window),
    )

    async def check() -> Any:
        await wait_until_ready(settings.bootstrap, timeout_s=timeout)
        return await check_health(settings, datetime.now(UTC), thresholds)

    try:
        report = asyncio.run(check())
    except BrokerError as error:
        click.echo(f"status unknown: {error}", err=True)
        sys.exit(EXIT_UNAVAILABLE)
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(format_status(report))
    sys.exit(EXIT_ATTENTION if report.attention() else EXIT_OK)


@main.command()
@kafka_options
@click.option(
    "--webhooks",
    envvar="MONITOR_WEBHOOKS",
    show_envvar=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file of [[subscribers]]: name, url, secret_env, min_level, signals.",
)
@click.option(
    "--group",
    envvar="MONITOR_WEBHOOK_GROUP",
    show_envvar=True,
    default=None,
    help="Consumer group (default: APP_ID-webhooks); deliverers in one group share the work.",
)
@click.option(
    "--from-beginning",
    is_flag=True,
    envvar="MONITOR_WEBHOOK_FROM_BEGINNING",
    show_envvar=True,
    help="A new group starts at the oldest notice kept (default: only new ones).",
)
@click.option(
    "--max-attempts",
    envvar="MONITOR_WEBHOOK_MAX_ATTEMPTS",
    show_envvar=True,
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="Attempts per subscriber and notice before it is parked on the dead-letter topic.",
)
@click.option(
    "--backoff",
    envvar="MONITOR_WEBHOOK_BACKOFF",
    show_envvar=True,
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Seconds before the second attempt; doubles with each further one.",
)
@click.option(
    "--max-backoff",
    envvar="MONITOR_WEBHOOK_MAX_BACKOFF",
    show_envvar=True,
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Longest wait between two attempts, in seconds.",
)
@click.option(
    "--request-timeout",
    envvar="MONITOR_WEBHOOK_TIMEOUT",
    show_envvar=True,
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds one POST may take.",
)
def deliver(
    webhooks: Path,
    group: str | None,
    from_beginning: bool,
    max_attempts: int,
    backoff: float,
    max_backoff: float,
    request_timeout: float,
    **options: Any,
) -> None:
    """POST every escalation notice to the webhook subscribers, signed, with retries."""
    from monitor.delivery.webhook import Outcome, RetryPolicy, load_subscribers, run_delivery
    from monitor.service import stop_on_signals

    settings = build_settings(**options)
    try:
        subscribers = load_subscribers(webhooks)
    except MonitorError as error:
        raise click.ClickException(str(error)) from error
    policy = RetryPolicy(max_attempts, backoff, max_backoff, request_timeout)

    def report(outcome: Outcome) -> None:
        verdict = "delivered" if outcome.delivered else f"parked ({outcome.reason})"
        click.echo(
            f"{outcome.subscriber.name}: {outcome.delivery_id} {verdict}"
            f" after {outcome.attempts} attempt(s)"
        )

    async def go() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await ensure_topics(settings)
        click.echo(f"delivering to {len(subscribers)} subscriber(s); Ctrl-C stops")
        await run_delivery(
            settings,
            subscribers,
            stop,
            group_id=group or f"{settings.app_id}-webhooks",
            policy=policy,
            from_beginning=from_beginning,
            on_outcome=report,
        )

    _run(go())


@main.command()
@kafka_options
@click.option(
    "--period",
    envvar="MONITOR_DIGEST_PERIOD",
    show_envvar=True,
    type=click.FloatRange(min=60),
    default=86400.0,
    show_default=True,
    help="Seconds a digest covers; periods are aligned to midnight UTC (epoch).",
)
@click.option(
    "--once",
    is_flag=True,
    envvar="MONITOR_DIGEST_ONCE",
    show_envvar=True,
    help="Publish the digest of the last complete period (or the one --until ends), then exit.",
)
@click.option(
    "--until",
    envvar="MONITOR_DIGEST_UNTIL",
    show_envvar=True,
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="With --once: the end of the period to digest (UTC), e.g. 2024-12-30.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="MONITOR_DIGEST_JSON",
    show_envvar=True,
    help="Print each digest as one JSON object instead of text.",
)
def digest(period: float, once: bool, until: Any, as_json: bool, **options: Any) -> None:
    """Publish a summary per period on alerts.digests: levels, top stories, signals."""
    from datetime import UTC, datetime, timedelta

    from monitor.delivery.digest import (
        format_digest,
        period_containing,
        publish_digest,
        run_digests,
    )
    from monitor.escalation.scoring import ScoringConfig
    from monitor.observe.progress import Progress
    from monitor.service import stop_on_signals

    settings = build_settings(**options)
    length = timedelta(seconds=period)
    weights = ScoringConfig.load().weights

    def show(compiled: Any, fresh: bool) -> None:
        if as_json:
            click.echo(json.dumps(compiled.model_dump(mode="json"), ensure_ascii=False))
        else:
            click.echo(format_digest(compiled) + ("" if fresh else "\n  (published before)"))

    async def go() -> None:
        await ensure_topics(settings)
        if once:
            end = until.replace(tzinfo=UTC) if until else datetime.now(UTC)
            # The last complete period: it ends where the period holding `end` starts.
            boundary, _ = period_containing(end, length)
            start = boundary - length
            with Progress("reading the topics", unit="records") as progress:
                compiled, fresh = await publish_digest(
                    settings, start, boundary, weights, progress=progress
                )
            show(compiled, fresh)
            return
        stop = asyncio.Event()
        stop_on_signals(stop)
        await run_digests(settings, length, weights, stop, on_digest=show)

    _run(go())


@main.command()
@kafka_options
@click.option(
    "--port",
    envvar="MONITOR_DASHBOARD_PORT",
    show_envvar=True,
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Serve the dashboard on this port.",
)
@click.option(
    "--host",
    envvar="MONITOR_DASHBOARD_HOST",
    show_envvar=True,
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 in a container).",
)
@click.option(
    "--refresh",
    envvar="MONITOR_DASHBOARD_REFRESH",
    show_envvar=True,
    type=click.FloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Seconds between two redraws of the page.",
)
@click.option(
    "--stale-after",
    envvar="MONITOR_STALE_AFTER",
    show_envvar=True,
    type=click.FloatRange(min=1),
    default=3600.0,
    show_default=True,
    help="Seconds without a successful poll after which a feed is stale.",
)
def dashboard(port: int, host: str, refresh: float, stale_after: float, **options: Any) -> None:
    """Serve a self-updating page: levels over time, notices, feed and stream health."""
    from datetime import timedelta

    from monitor.observe.dashboard import serve_dashboard
    from monitor.observe.health import Thresholds
    from monitor.service import stop_on_signals

    settings = build_settings(**options)

    async def go() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await ensure_topics(settings)
        async with serve_dashboard(
            settings,
            host=host,
            port=port,
            refresh_s=refresh,
            thresholds=Thresholds(stale_after=timedelta(seconds=stale_after)),
        ) as url:
            click.echo(f"dashboard at {url} (Ctrl-C stops)")
            await stop.wait()

    _run(go())


def _load_feeds(path: Path) -> Any:
    try:
        return load_catalogue(path)
    except MonitorError as error:
        raise click.ClickException(str(error)) from error


def _round_line(report: Any) -> str:
    line = (
        f"round: {len(report.polls)} feeds ({report.feeds_ok} ok, {report.feeds_failed} failed),"
        f" {len(report.published)} new items published"
    )
    # Collector details, shown only when there is something to say.
    extras = [
        f"{report.items_updated} of them new revisions" if report.items_updated else "",
        f"{len(report.stale)} feeds stale" if report.stale else "",
        f"{len(report.deferred)} deferred by Retry-After" if report.deferred else "",
    ]
    return "; ".join([line, *filter(None, extras)])


def _load_scoring(path: Path | None) -> Any:
    from monitor.escalation.scoring import ScoringConfig

    try:
        return ScoringConfig.load(path) if path is not None else ScoringConfig.load()
    except MonitorError as error:
        raise click.ClickException(str(error)) from error


def _load_rules(directory: Path | None) -> Any:
    from monitor.tagging.rules import load_rules

    try:
        return load_rules(directory)
    except MonitorError as error:
        raise click.ClickException(f"broken rules: {error}") from error


def _load_archive(path: Path) -> Any:
    from monitor.escalation.archive import load_archive

    try:
        return load_archive(path)
    except MonitorError as error:
        raise click.ClickException(str(error)) from error


@main.command()
@click.argument("corpus", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="MONITOR_BACKTEST_JSON",
    show_envvar=True,
    help="Notices as one JSON object a line on stdout; the summary goes to stderr.",
)
@click.option(
    "--timeline",
    envvar="MONITOR_TIMELINE",
    show_envvar=True,
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the tension timeline as a self-contained HTML page here.",
)
@click.option(
    "--settle",
    is_flag=True,
    envvar="MONITOR_BACKTEST_SETTLE",
    show_envvar=True,
    hidden=True,
    help="No effect: every item is decided when it is processed (kept for old scripts).",
)
@scoring_option
@rules_option
def backtest(
    corpus: Path,
    as_json: bool,
    timeline: Path | None,
    settle: bool,
    scoring_file: Path | None,
    rules_dir: Path | None,
) -> None:
    """Run the escalation over an archive of items (JSON lines), without a broker."""
    del settle  # every item is decided when processed: nothing is left pending
    from monitor.delivery.terminal import format_backtest_summary, format_notice
    from monitor.escalation.backtest import backtest as run_backtest
    from monitor.escalation.timeline import render_html
    from monitor.observe.progress import Progress

    items = _load_archive(corpus)
    rules = _load_rules(rules_dir)
    config = _load_scoring(scoring_file)
    with Progress("backtest", total=len(items), unit="items") as progress:
        result = run_backtest(items, rules, config, on_item=progress.advance)
    for notice in result.notices:
        if as_json:
            click.echo(json.dumps(notice.model_dump(mode="json"), ensure_ascii=False))
        else:
            click.echo(format_notice(notice) + "\n")
    click.echo(format_backtest_summary(result), err=as_json)
    if timeline is not None:
        timeline.write_text(render_html(result, f"Baku–Moscow tension: {corpus.name}"), "utf-8")
        click.echo(f"timeline written to {timeline}", err=as_json)


@main.command()
@kafka_options
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ingest(archive: Path, **options: Any) -> None:
    """Publish archived items (JSON lines) into news.items, oldest first: a backfill."""
    from monitor.escalation.replay import ingest as run_ingest
    from monitor.observe.progress import Progress

    settings = build_settings(**options)
    items = _load_archive(archive)
    with Progress("ingest", total=len(items), unit="items") as progress:
        count = _run(run_ingest(settings, items, progress.advance))
    click.echo(f"published {count} items to news.items")


@main.command()
@kafka_options
@click.option(
    "--apply",
    is_flag=True,
    envvar="MONITOR_REPLAY_APPLY",
    show_envvar=True,
    help="Rebuild the derived topics and the escalator's table (stop the workers first).",
)
@scoring_option
@rules_option
def replay(apply: bool, scoring_file: Path | None, rules_dir: Path | None, **options: Any) -> None:
    """Derive everything again from news.items with the current rules; say what changed."""
    from monitor.delivery.terminal import format_replay_report
    from monitor.escalation.replay import derive, rebuild
    from monitor.observe.progress import Progress

    settings = build_settings(**options)
    rules = _load_rules(rules_dir)
    config = _load_scoring(scoring_file)
    with Progress("reading news.items", unit="records") as progress:
        report = _run(derive(settings, rules, config, progress.advance))
    click.echo(format_replay_report(report))
    if apply:
        with Progress("rebuilding derived topics", unit="records") as progress:
            _run(rebuild(settings, report, progress.advance))
        click.echo("derived topics and the escalator's table rebuilt; start the workers again")


main.add_command(tag_command)
main.add_command(evaluate_command)


if __name__ == "__main__":
    sys.exit(main())
