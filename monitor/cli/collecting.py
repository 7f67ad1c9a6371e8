"""Reading the news: `monitor collect`, `monitor feeds check`, `feeds import` and `feeds export`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monitor.cli.options import option, settings_options
from monitor.cli.running import run
from monitor.cli.settings import (
    BOOTSTRAP,
    FEED,
    FEEDS,
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
# Feeds import wrote what it could, but skipped some outlines (each named on stderr).
EXIT_OUTLINES_SKIPPED = 2


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


@feeds_group.command(name="import")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@option(
    "--output",
    env="MONITOR_FEEDS_IMPORT_OUTPUT",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Add the feeds to this catalogue (created if missing; feeds already in it are"
    " left as they are) instead of printing them.",
)
def feeds_import(opml_file: Path, output: Path | None) -> None:
    """Read an OPML subscription list (a feed reader's export) as [[feeds]] tables.

    Prints the TOML, or adds it to the --output catalogue. Every outline that
    is not imported, and everything not kept (languages other than the
    tagger's, folders), is named on standard error with its line.

    Exit status: 0 every feed imported, 1 the file is not OPML or the catalogue
    cannot be written, 2 some outlines were skipped (the others were imported).
    """
    from monitor.collect.opml import add_to_catalogue, catalogue_toml, read_opml

    imported = read_opml(opml_file.read_bytes())
    for skipped in imported.skipped:
        click.echo(f"{opml_file}: skipped {skipped}", err=True)
    for note in imported.notes:
        click.echo(f"{opml_file}: {note}", err=True)
    if output is None:
        click.echo(catalogue_toml(imported.feeds), nl=False)
    else:
        header = (
            f"# Feeds imported from {opml_file.name} by `monitor feeds import`."
            "\n# One [[feeds]] table per feed: see docs/collectors.md."
        )
        result = add_to_catalogue(output, imported.feeds, header)
        already = f", {len(result.present)} already there" if result.present else ""
        click.echo(f"{output}: {len(result.added)} feeds added{already}", err=True)
    summary = f"{len(imported.feeds)} feeds read"
    if imported.skipped:
        click.echo(f"{opml_file}: {summary}, {len(imported.skipped)} outlines skipped", err=True)
        sys.exit(EXIT_OUTLINES_SKIPPED)
    click.echo(f"{opml_file}: {summary}", err=True)


@feeds_group.command(name="export")
@settings_options(FEEDS, accepts=FEED)
@option(
    "--output",
    env="MONITOR_FEEDS_EXPORT_OUTPUT",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the OPML to this file instead of standard output.",
)
def feeds_export(settings: Settings, output: Path | None) -> None:
    """Write the catalogue as an OPML 2.0 subscription list, for a feed reader.

    `feeds import` reads it back into the same catalogue: the facts OPML has
    no attribute for (country, kind, stale_after_hours) travel in attributes
    of the monitor's own namespace, which readers ignore.
    """
    from monitor.collect.catalogue import load_catalogue
    from monitor.collect.opml import write_opml

    feeds = load_catalogue(settings.feeds)
    document = write_opml(feeds, title=f"Feeds of the Baku–Moscow monitor ({settings.feeds.name})")
    if output is None:
        click.echo(document, nl=False)
    else:
        output.write_bytes(document)
        click.echo(f"{output}: {len(feeds)} feeds", err=True)


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
