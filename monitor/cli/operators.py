"""Keeping the monitor running: `monitor status` and `monitor dashboard`."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING

import click

from monitor.cli.options import option, settings_options
from monitor.cli.running import run
from monitor.cli.settings import APP_ID, BOOTSTRAP, DATA_DIR, KAFKA, SCORING, THRESHOLDS
from monitor.config import Settings

if TYPE_CHECKING:
    from monitor.observe.health import HealthReport

# The app id names the workers' table topic, whose records both count; the thresholds
# say what needs attention; the data directory remembers the broker's cluster id.
OPERATOR = (BOOTSTRAP, APP_ID, DATA_DIR, *THRESHOLDS)


@click.command()
@settings_options(*OPERATOR, accepts=KAFKA)
@option(
    "--json",
    "as_json",
    env="MONITOR_STATUS_JSON",
    is_flag=True,
    help="One JSON document instead of text, for scripts.",
)
@option(
    "--timeout",
    env="MONITOR_STATUS_TIMEOUT",
    type=click.FloatRange(min=1),
    default=10.0,
    help="Seconds to wait for the broker to answer.",
)
def status(settings: Settings, as_json: bool, timeout: float) -> None:
    """Health at a glance: current level, consumer lag, stale feeds, dead letters.

    Exit status: 0 when all is well, 1 when something needs attention, 2 when
    the broker did not answer.
    """
    from monitor.broker import BrokerError, wait_until_ready
    from monitor.clock import utc_now
    from monitor.observe.health import Thresholds, check_health
    from monitor.observe.status import (
        EXIT_ATTENTION,
        EXIT_OK,
        EXIT_UNAVAILABLE,
        format_status,
    )

    async def check() -> HealthReport | None:
        try:
            await wait_until_ready(settings.bootstrap, timeout_s=timeout)
            return await check_health(settings, utc_now(), Thresholds.from_settings(settings))
        except BrokerError as error:
            click.echo(f"status unknown: {error}", err=True)
            return None

    report = run(check())
    if report is None:
        sys.exit(EXIT_UNAVAILABLE)
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(format_status(report))
    sys.exit(EXIT_ATTENTION if report.attention() else EXIT_OK)


@click.command()
# The scoring file gives the levels' thresholds the page draws.
@settings_options(*OPERATOR, SCORING, accepts=KAFKA)
@option(
    "--port",
    env="MONITOR_DASHBOARD_PORT",
    type=click.IntRange(0, 65535),
    default=8080,
    help="Serve the dashboard on this port.",
)
@option(
    "--host",
    env="MONITOR_DASHBOARD_HOST",
    default="127.0.0.1",
    help="Address to listen on (0.0.0.0 in a container).",
)
@option(
    "--refresh",
    env="MONITOR_DASHBOARD_REFRESH",
    type=click.FloatRange(min=0.5),
    default=5.0,
    help="Seconds between two redraws of the page.",
)
def dashboard(settings: Settings, port: int, host: str, refresh: float) -> None:
    """Serve a self-updating page: levels over time, notices, feed and stream health."""
    from monitor.observe.dashboard import serve_dashboard
    from monitor.topics import ensure_topics

    async def serve(stop: asyncio.Event) -> None:
        await ensure_topics(settings)
        async with serve_dashboard(settings, host=host, port=port, refresh_s=refresh) as url:
            click.echo(f"dashboard at {url} (Ctrl-C stops)")
            await stop.wait()

    run(serve)


COMMANDS = (status, dashboard)
