"""The broker and its topics: `monitor broker`, `monitor topics`."""

from __future__ import annotations

import asyncio

import click

from monitor.cli.options import option, settings_options
from monitor.cli.running import run
from monitor.cli.settings import (
    APP_ID,
    BOOTSTRAP,
    KAFKA,
    PARTITIONS,
)
from monitor.config import Settings


@click.command()
@option(
    "--port",
    env="MONITOR_BROKER_PORT",
    type=click.IntRange(1, 65535),
    default=9092,
    help="Port to listen on.",
)
@option(
    "--host",
    env="MONITOR_BROKER_HOST",
    default="127.0.0.1",
    help="Address to listen on (and advertise).",
)
def broker(port: int, host: str) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, in memory) until Ctrl-C."""
    from monitor.broker import EmbeddedBroker

    async def serve(stop: asyncio.Event) -> None:
        async with EmbeddedBroker(port=port, host=host) as embedded:
            click.echo(f"embedded broker ready at {embedded.bootstrap} (in memory; Ctrl-C stops)")
            await stop.wait()
        click.echo("embedded broker stopped")

    run(serve)


@click.command()
@settings_options(BOOTSTRAP, PARTITIONS, APP_ID, accepts=KAFKA)
def topics(settings: Settings) -> None:
    """Create every topic the monitor uses (those that do not exist yet)."""
    from monitor.topics import all_topics, ensure_topics

    created = run(ensure_topics(settings))
    for spec in all_topics(settings):
        mark = "created" if spec.name in created else "exists"
        click.echo(f"{spec.name:<45} {spec.partition_count(settings):>3} partitions  {mark}")


COMMANDS = (broker, topics)
