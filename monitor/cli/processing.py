"""The stream processors: `monitor worker`, `monitor run` (with the collector), `monitor demo`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

from monitor.cli.collecting import round_line
from monitor.cli.options import option, settings_options
from monitor.cli.running import run
from monitor.cli.settings import (
    APP_ID,
    BOOTSTRAP,
    DATA_DIR,
    FEED,
    FETCH_MAX_WAIT,
    IDEMPOTENCE,
    KAFKA,
    PARTITIONS,
    REBALANCE_TIMEOUT,
    RULES,
    SCORING,
    SESSION_TIMEOUT,
    TABLE_VIEWS,
    WEB_HOST,
    WEB_PORT,
)
from monitor.config import Settings

if TYPE_CHECKING:
    from monitor.escalation.scoring import ScoringConfig
    from monitor.tagging.rules import Rules

# What the Faust workers need: a group to join, tables, their rules and scoring.
# They produce through Faust, which does not take the idempotence option.
WORKER = (
    BOOTSTRAP,
    PARTITIONS,
    APP_ID,
    FETCH_MAX_WAIT,
    REBALANCE_TIMEOUT,
    SESSION_TIMEOUT,
    RULES,
    SCORING,
    DATA_DIR,
    WEB_PORT,
    WEB_HOST,
    TABLE_VIEWS,
)


def load_processing(settings: Settings) -> tuple[Rules, ScoringConfig]:
    """The rules and the scoring the settings name: read before anything touches Kafka,
    so that a broken file ends the command with its message."""
    from monitor.escalation.scoring import DEFAULT_SCORING, ScoringConfig
    from monitor.tagging.rules import load_rules

    return load_rules(settings.rules_dir), ScoringConfig.load(
        settings.scoring_file or DEFAULT_SCORING
    )


@click.command()
@settings_options(*WORKER, accepts=KAFKA)
def worker(settings: Settings) -> None:
    """Run the stream processors: tagger, escalator."""
    from monitor.service import run_worker

    rules, scoring = load_processing(settings)
    run(lambda stop: run_worker(settings, stop, rules, scoring))


@click.command(name="run")
@settings_options(*WORKER, IDEMPOTENCE, *FEED, accepts=KAFKA)
@option(
    "--broker-port",
    env="MONITOR_BROKER_PORT",
    type=click.IntRange(1, 65535),
    default=9092,
    help="Without --bootstrap: the embedded broker's port on 127.0.0.1.",
)
def run_all(settings: Settings, broker_port: int) -> None:
    """Collectors and stream processors together, in one process.

    Without --bootstrap (or MONITOR_KAFKA_BOOTSTRAP), on the embedded broker at
    127.0.0.1:--broker-port, whose log is kept under DATA_DIR/broker: stop and
    start again, and it goes on where it left off.
    """
    from dataclasses import replace

    from monitor.broker import EmbeddedBroker
    from monitor.collect.catalogue import load_catalogue
    from monitor.observe.metrics import Metrics
    from monitor.service import run_collector, run_worker

    feeds = load_catalogue(settings.feeds)
    rules, scoring = load_processing(settings)
    source = click.get_current_context().get_parameter_source("bootstrap")
    embedded = source is click.core.ParameterSource.DEFAULT

    async def both(settings: Settings, stop: asyncio.Event) -> None:
        metrics = Metrics()  # one registry: the worker's /metrics shows the collector's too
        await asyncio.gather(
            run_worker(settings, stop, rules, scoring, metrics),
            run_collector(
                settings,
                feeds,
                stop,
                on_poll=metrics.on_poll,
                on_write_failure=metrics.on_write_failure,
                on_round=lambda report: click.echo(round_line(report)),
            ),
        )

    async def on_embedded_broker(stop: asyncio.Event) -> None:
        broker_dir = settings.data_dir / "broker"
        async with EmbeddedBroker(port=broker_port, data_dir=broker_dir) as broker:
            click.echo(f"embedded broker at {broker.bootstrap}, its log kept in {broker_dir}")
            await both(replace(settings, bootstrap=broker.bootstrap), stop)

    run(on_embedded_broker if embedded else lambda stop: both(settings, stop))


@click.command()
@option(
    "--bootstrap",
    env="MONITOR_KAFKA_BOOTSTRAP",
    default=None,
    show_default=False,
    help="Use this Kafka instead of starting the embedded broker.",
)
@option(
    "--timeout",
    env="MONITOR_DEMO_TIMEOUT",
    type=click.FloatRange(min=1),
    default=100.0,
    help="Seconds to wait for the pipeline to finish.",
)
def demo(bootstrap: str | None, timeout: float) -> None:
    """The whole pipeline on the bundled sample feeds, on an embedded broker, then exit."""
    from dataclasses import replace

    from monitor.demo import run_demo

    settings = replace(Settings(), bootstrap=bootstrap) if bootstrap else Settings()
    summary = run(run_demo(settings, click.echo, embedded=not bootstrap, timeout_s=timeout))
    click.echo("\n" + summary.format())


COMMANDS = (worker, run_all, demo)
