"""The broker and its topics: `monitor broker`, `monitor topics`."""

from __future__ import annotations

import asyncio
from pathlib import Path

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
    "--data-dir",
    env="MONITOR_BROKER_DATA_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".monitor-data") / "broker",
    help="Where the broker journals what it acks, and reads it back when it starts again.",
)
@option(
    "--in-memory",
    env="MONITOR_BROKER_IN_MEMORY",
    is_flag=True,
    default=False,
    help="Keep nothing: a restart starts empty, under a new cluster id.",
)
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
def broker(data_dir: Path, in_memory: bool, port: int, host: str) -> None:
    """Run the embedded Kafka-compatible broker (Tansu) until Ctrl-C.

    What it acks is journaled under --data-dir and put back when it starts
    again on the same directory (see README, "Guarantees").
    """
    from monitor.broker import EmbeddedBroker

    kept = None if in_memory else data_dir

    async def serve(stop: asyncio.Event) -> None:
        async with EmbeddedBroker(port=port, host=host, data_dir=kept) as embedded:
            where = "in memory only" if kept is None else f"its log kept in {kept}"
            click.echo(f"embedded broker ready at {embedded.bootstrap} ({where}; Ctrl-C stops)")
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
