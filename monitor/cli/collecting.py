"""Reading the news: `monitor collect` and `monitor feeds check`."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import click

from monitor.cli.options import option, settings_options
from monitor.cli.running import run
from monitor.cli.settings import (
    BOOTSTRAP,
    FEED,
    FETCHING,
    IDEMPOTENCE,
    KAFKA,
    PARTITIONS,
    WEB_HOST,
    WEB_PORT,
)
from monitor.config import Settings

if TYPE_CHECKING:
    from monitor.collect.runner import RoundReport

# Feeds check fails when some feed did; an invalid catalogue exits 1 like any error.
EXIT_FEEDS_FAILED = 2


@click.command()
@settings_options(BOOTSTRAP, IDEMPOTENCE, PARTITIONS, *FEED, WEB_PORT, WEB_HOST, accepts=KAFKA)
@option(
    "--once",
    env="MONITOR_COLLECT_ONCE",
    is_flag=True,
    help="Poll every feed once, then exit (for cron and tests).",
)
def collect(settings: Settings, once: bool) -> None:
    """Poll the feed catalogue and publish new items to news.items."""
    from monitor.collect.catalogue import load_catalogue
    from monitor.observe.metrics import collector_metrics
    from monitor.service import run_collector

    feeds = load_catalogue(settings.feeds)

    async def collect_until_stopped(stop: asyncio.Event) -> None:
        async with collector_metrics(settings) as metrics:
            await run_collector(
                settings,
                feeds,
                stop,
                once=once,
                on_poll=metrics.on_poll,
                on_write_failure=metrics.on_write_failure,
                on_round=lambda report: click.echo(round_line(report)),
                metrics=metrics,
            )

    run(collect_until_stopped)


@click.group(name="feeds")
def feeds_group() -> None:
    """The feed catalogue."""


@feeds_group.command(name="check")
@settings_options(*FETCHING, accepts=FEED)
@option(
    "--no-probe",
    env="MONITOR_FEEDS_NO_PROBE",
    is_flag=True,
    help="Only validate the file; fetch nothing.",
)
def feeds_check(settings: Settings, no_probe: bool) -> None:
    """Validate the catalogue, then fetch and parse every feed once (no Kafka).

    Exit status: 0 when every feed answered with a usable feed, 1 when the
    catalogue is invalid, 2 when it is valid but some feeds failed.
    """
    from monitor.clock import utc_now
    from monitor.collect.catalogue import load_catalogue
    from monitor.collect.check import format_probe, probe_feeds
    from monitor.collect.runner import CollectorOptions

    feeds = load_catalogue(settings.feeds)
    click.echo(f"{settings.feeds}: {len(feeds)} feeds, valid")
    if no_probe:
        return
    polls = run(probe_feeds(feeds, CollectorOptions.from_settings(settings), utc_now))
    for feed, polled in zip(feeds, polls, strict=True):
        click.echo(format_probe(feed, polled))
    failed = sum(1 for polled in polls if polled.status == "error")
    click.echo(f"{len(feeds) - failed} of {len(feeds)} feeds answered with a usable feed")
    if failed:
        sys.exit(EXIT_FEEDS_FAILED)


def round_line(report: RoundReport) -> str:
    """One polling round, in a line."""
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


COMMANDS = (collect, feeds_group)
