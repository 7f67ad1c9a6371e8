"""What the notices go to: `monitor alerts`, `monitor deliver` (webhooks), `monitor digest`."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monitor.cli.options import option, settings_options
from monitor.cli.running import run, until_stopped
from monitor.cli.settings import (
    APP_ID,
    BOOTSTRAP,
    DIGEST_PERIOD,
    IDEMPOTENCE,
    KAFKA,
    MAX_POLL_INTERVAL,
    REBALANCE_TIMEOUT,
    RETRIES,
    SCORING,
    SESSION_TIMEOUT,
)
from monitor.config import Settings

if TYPE_CHECKING:
    from monitor.delivery.webhook import Outcome
    from schemas import DigestCompiled


@click.command()
@settings_options(BOOTSTRAP, accepts=KAFKA)
@option(
    "--json", "as_json", env="MONITOR_ALERTS_JSON", is_flag=True, help="One JSON object a line."
)
@option(
    "--from-beginning",
    env="MONITOR_ALERTS_FROM_BEGINNING",
    is_flag=True,
    help="Start at the oldest notice kept (default: only new ones).",
)
@option(
    "--follow",
    env="MONITOR_ALERTS_FOLLOW",
    is_flag=True,
    help="Keep waiting for new notices instead of exiting at the end.",
)
def alerts(settings: Settings, as_json: bool, from_beginning: bool, follow: bool) -> None:
    """Print escalation notices from alerts.escalations.

    Without flags, waits for new notices (Ctrl-C stops). With --from-beginning,
    prints every notice kept and exits, or keeps waiting with --follow too.
    """
    from monitor.delivery.terminal import format_notice
    from monitor.kafka import read_topic
    from monitor.observe.skips import Skips
    from monitor.topics import ALERTS_ESCALATIONS
    from schemas import EscalationNotice

    skips = Skips("monitor alerts")

    async def print_notices() -> None:
        # Starting at the end without following would show nothing at all.
        records = read_topic(
            settings,
            ALERTS_ESCALATIONS,
            from_beginning=from_beginning,
            follow=follow or not from_beginning,
        )
        async for record in records:
            notice = skips.decode(record, EscalationNotice, key_of=lambda n: n.dyad)
            if notice is None:
                continue
            if as_json:
                click.echo(json.dumps(notice.model_dump(mode="json"), ensure_ascii=False))
            else:
                click.echo(format_notice(notice) + "\n")

    try:
        run(lambda stop: until_stopped(print_notices(), stop))
    finally:
        if skips.total:
            click.echo(skips.summary(), err=True)


@click.command()
# A consumer group of deliverers (APP_ID-webhooks by default) that park what fails.
@settings_options(
    BOOTSTRAP,
    IDEMPOTENCE,
    APP_ID,
    REBALANCE_TIMEOUT,
    SESSION_TIMEOUT,
    MAX_POLL_INTERVAL,
    *RETRIES,
    accepts=KAFKA,
)
@option(
    "--webhooks",
    env="MONITOR_WEBHOOKS",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file of [[subscribers]]: name, url, secret_env, min_level, signals.",
)
@option(
    "--group",
    env="MONITOR_WEBHOOK_GROUP",
    default=None,
    help="Consumer group (default: APP_ID-webhooks); deliverers in one group share the work.",
)
@option(
    "--from-beginning",
    env="MONITOR_WEBHOOK_FROM_BEGINNING",
    is_flag=True,
    help="A new group starts at the oldest notice kept (default: only new ones).",
)
def deliver(
    settings: Settings,
    webhooks: Path,
    group: str | None,
    from_beginning: bool,
) -> None:
    """POST every escalation notice to the webhook subscribers, signed, with retries."""
    from monitor.delivery.webhook import load_subscribers, run_delivery
    from monitor.observe.skips import Skips
    from monitor.topics import ensure_topics

    subscribers = load_subscribers(webhooks)
    skips = Skips("webhook deliverer")

    def report(outcome: Outcome) -> None:
        verdict = "delivered" if outcome.delivered else f"parked ({outcome.reason})"
        click.echo(
            f"{outcome.subscriber.name}: {outcome.delivery_id} {verdict}"
            f" after {outcome.attempts} attempt(s)"
        )

    async def deliver_until_stopped(stop: asyncio.Event) -> None:
        await ensure_topics(settings)
        click.echo(f"delivering to {len(subscribers)} subscriber(s); Ctrl-C stops")
        try:
            await run_delivery(
                settings,
                subscribers,
                stop,
                group_id=group or f"{settings.app_id}-webhooks",
                from_beginning=from_beginning,
                on_outcome=report,
                skips=skips,
            )
        finally:
            if skips.total:
                click.echo(skips.summary(), err=True)

    run(deliver_until_stopped)


@click.command()
@settings_options(BOOTSTRAP, IDEMPOTENCE, DIGEST_PERIOD, SCORING, accepts=KAFKA)
@option(
    "--once",
    env="MONITOR_DIGEST_ONCE",
    is_flag=True,
    help="Publish the digest of the last complete period (or the one --until ends), then exit.",
)
@option(
    "--until",
    env="MONITOR_DIGEST_UNTIL",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="With --once: the end of the period to digest (UTC), e.g. 2024-12-30.",
)
@option(
    "--json",
    "as_json",
    env="MONITOR_DIGEST_JSON",
    is_flag=True,
    help="Print each digest as one JSON object instead of text.",
)
def digest(settings: Settings, once: bool, until: datetime | None, as_json: bool) -> None:
    """Publish a summary per period on alerts.digests: levels, top stories, signals."""
    from datetime import UTC, timedelta

    from monitor.clock import utc_now
    from monitor.delivery.digest import (
        format_digest,
        period_containing,
        publish_digest,
        run_digests,
    )
    from monitor.escalation.scoring import DEFAULT_SCORING, ScoringConfig
    from monitor.observe.progress import Progress
    from monitor.observe.skips import Skips
    from monitor.topics import ensure_topics

    skips = Skips("digest")

    length = timedelta(seconds=settings.digest_period_s)
    weights = ScoringConfig.load(settings.scoring_file or DEFAULT_SCORING).weights

    def show(compiled: DigestCompiled, fresh: bool) -> None:
        if as_json:
            click.echo(json.dumps(compiled.model_dump(mode="json"), ensure_ascii=False))
        else:
            click.echo(format_digest(compiled) + ("" if fresh else "\n  (published before)"))

    async def last_period() -> None:
        await ensure_topics(settings)
        end = until.replace(tzinfo=UTC) if until else utc_now()
        # The last complete period: it ends where the period holding `end` starts.
        boundary, _ = period_containing(end, length)
        with Progress("reading the topics", unit="records") as progress:
            compiled, fresh = await publish_digest(
                settings, boundary - length, boundary, weights, progress=progress, skips=skips
            )
        show(compiled, fresh)
        if skips.total:
            click.echo(skips.summary(), err=True)

    async def every_period(stop: asyncio.Event) -> None:
        await ensure_topics(settings)
        await run_digests(settings, length, weights, stop, on_digest=show, skips=skips)

    if once:
        run(last_period())
    else:
        run(every_period)


COMMANDS = (alerts, deliver, digest)
