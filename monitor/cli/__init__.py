"""The `monitor` command. `monitor --help` lists the commands; they live by who uses them:

    infra.py        the broker and its topics
    collecting.py   reading the news, checking the feed catalogue
    processing.py   the stream processors, alone, with the collector, or as a demo
    subscribers.py  what the notices go to: a terminal, webhooks, digests
    operators.py    status and the dashboard
    analysts.py     backtests, backfills, replays; tagging and its evaluation

options.py is how an option is declared, once: flags, MONITOR_ variable, Settings
field; settings.py declares those the commands share. running.py runs a command's
coroutine and gives every command the same error exits.
"""

from __future__ import annotations

import logging

import click

from monitor.cli import analysts, collecting, infra, operators, processing, subscribers
from monitor.cli.options import option
from monitor.cli.running import MonitorGroup


@click.group(
    cls=MonitorGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@option(
    "--log-level",
    env="MONITOR_LOG_LEVEL",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="warning",
    help="How much the monitor logs on standard error.",
)
def main(log_level: str) -> None:
    """Baku–Moscow tension monitor: news feeds → Kafka → Faust → escalation notices."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


for module in (infra, collecting, processing, subscribers, operators, analysts):
    for command in module.COMMANDS:
        main.add_command(command)
