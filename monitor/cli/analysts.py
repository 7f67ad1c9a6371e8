"""Working on the record: `monitor backtest`, `ingest` and `replay`; `tag` and `evaluate`
come with the tagger (monitor/tagging/commands.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from monitor.cli.options import option, settings_options
from monitor.cli.processing import load_processing
from monitor.cli.running import run
from monitor.cli.settings import (
    APP_ID,
    BOOTSTRAP,
    IDEMPOTENCE,
    KAFKA,
    PARTITIONS,
    RULES,
    SCORING,
)
from monitor.config import Settings
from monitor.tagging.commands import evaluate_command, tag_command

ARCHIVE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@settings_options(SCORING, RULES)
@click.argument("corpus", type=ARCHIVE)
@option(
    "--json",
    "as_json",
    env="MONITOR_BACKTEST_JSON",
    is_flag=True,
    help="Notices as one JSON object a line on stdout; the summary goes to stderr.",
)
@option(
    "--timeline",
    env="MONITOR_TIMELINE",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the tension timeline as a self-contained HTML page here.",
)
@option(
    "--settle",
    env="MONITOR_BACKTEST_SETTLE",
    is_flag=True,
    hidden=True,
    help="No effect: every item is decided when it is processed (kept for old scripts).",
)
def backtest(
    settings: Settings, corpus: Path, as_json: bool, timeline: Path | None, settle: bool
) -> None:
    """Run the escalation over an archive of items (JSON lines), without a broker."""
    del settle  # every item is decided when processed: nothing is left pending
    from monitor.delivery.terminal import format_backtest_summary, format_notice
    from monitor.escalation.archive import load_archive
    from monitor.escalation.backtest import backtest as run_backtest
    from monitor.escalation.timeline import render_html
    from monitor.observe.progress import Progress

    items = load_archive(corpus)
    rules, config = load_processing(settings)
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


@click.command()
@settings_options(BOOTSTRAP, IDEMPOTENCE, PARTITIONS, accepts=KAFKA)
@click.argument("archive", type=ARCHIVE)
def ingest(settings: Settings, archive: Path) -> None:
    """Publish archived items (JSON lines) into news.items, oldest first: a backfill.

    A line that is not an item (not JSON, not valid, too large for a record) goes
    to news.deadletter with its line number and reason; the others are published.
    """
    from monitor.escalation.archive import read_archive
    from monitor.escalation.replay import ingest as run_ingest
    from monitor.observe.progress import Progress

    items, rejected = read_archive(archive)
    for line in rejected[:10]:
        click.echo(f"{archive}:{line.number}: {line.reason}", err=True)
    with Progress("ingest", total=len(items), unit="items") as progress:
        count = run(run_ingest(settings, items, progress.advance, rejected, archive.name))
    click.echo(f"published {count} items to news.items")
    if rejected:
        click.echo(
            f"{len(rejected)} lines were not items: dead-lettered to news.deadletter"
            f" (stage ingest, topic ingest:{archive.name}, offset = line number)",
            err=True,
        )


@click.command()
@settings_options(BOOTSTRAP, IDEMPOTENCE, PARTITIONS, APP_ID, SCORING, RULES, accepts=KAFKA)
@option(
    "--apply",
    env="MONITOR_REPLAY_APPLY",
    is_flag=True,
    help="Rebuild the derived topics and the escalator's table (stop the workers first).",
)
def replay(settings: Settings, apply: bool) -> None:
    """Derive everything again from news.items with the current rules; say what changed."""
    from monitor.delivery.terminal import format_replay_report
    from monitor.escalation.replay import derive, rebuild
    from monitor.observe.progress import Progress

    rules, config = load_processing(settings)
    with Progress("reading news.items", unit="records") as progress:
        report = run(derive(settings, rules, config, progress.advance))
    click.echo(format_replay_report(report))
    if apply:
        with Progress("rebuilding derived topics", unit="records") as progress:
            run(rebuild(settings, report, progress.advance))
        click.echo("derived topics and the escalator's table rebuilt; start the workers again")


COMMANDS = (backtest, ingest, replay, tag_command, evaluate_command)
