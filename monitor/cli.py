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
    ]
    for option in reversed(options):
        command = option(command)
    return command


def build_settings(**options: Any) -> Settings:
    """The one place where CLI options become settings."""
    mapping = {
        "bootstrap": "bootstrap",
        "partitions": "partitions",
        "idempotence": "idempotence",
        "app_id": "app_id",
        "rebalance_timeout": "rebalance_timeout_s",
        "session_timeout": "session_timeout_s",
        "feeds": "feeds",
        "interval": "poll_interval_s",
        "fetch_timeout": "fetch_timeout_s",
        "max_feed_bytes": "max_feed_bytes",
        "web_port": "web_port",
        "data_dir": "data_dir",
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
def collect(once: bool, **options: Any) -> None:
    """Poll the feed catalogue and publish new items to news.items."""
    from monitor.service import run_collector, stop_on_signals

    settings = build_settings(**options)
    feeds = _load_feeds(settings.feeds)

    async def go() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await run_collector(
            settings, feeds, stop, once=once, on_round=lambda r: click.echo(_round_line(r))
        )

    _run(go())


def worker_options(command: F) -> F:
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
        help="Serve Faust's web views on this port (off by default).",
    )(command)


@main.command()
@kafka_options
@worker_options
def worker(**options: Any) -> None:
    """Run the stream processors: tagger, router, escalator."""
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
    from monitor.service import run_collector, run_worker, stop_on_signals

    settings = build_settings(**options)
    feeds = _load_feeds(settings.feeds)

    async def go() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await asyncio.gather(
            run_worker(settings, stop),
            run_collector(settings, feeds, stop, on_round=lambda r: click.echo(_round_line(r))),
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

    # One partition end to end: the demo loads two years of history at once, and
    # the escalation reads it in the order it happened (see README, "Guarantees").
    settings = replace(Settings(), partitions=1)
    if bootstrap:
        settings = replace(settings, bootstrap=bootstrap)
    summary = _run(run_demo(settings, click.echo, embedded=bootstrap is None, timeout_s=timeout))
    click.echo("\n" + summary.format())


def _load_feeds(path: Path) -> Any:
    try:
        return load_catalogue(path)
    except MonitorError as error:
        raise click.ClickException(str(error)) from error


def _round_line(report: Any) -> str:
    return (
        f"round: {len(report.polls)} feeds ({report.feeds_ok} ok, {report.feeds_failed} failed),"
        f" {len(report.published)} new items published"
    )


if __name__ == "__main__":
    sys.exit(main())
