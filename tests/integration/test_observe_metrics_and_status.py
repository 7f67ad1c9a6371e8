"""What an operator sees: /metrics on the web port of `monitor run`, and `monitor status`.

The roles run as users start them (subprocesses of the real CLI) against a
broker of this module's own.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from monitor.broker import EmbeddedBroker, free_port
from monitor.clock import utc_now
from monitor.collect.catalogue import FeedSpec
from monitor.collect.guard import guarded_session
from monitor.collect.runner import Collector, CollectorOptions
from monitor.collect.schedule import SchedulePolicy
from monitor.config import Settings
from monitor.kafka import producer, publish
from monitor.observe.metrics import Metrics
from monitor.records import Outgoing
from monitor.topics import NEWS_ITEMS, ensure_topics
from tests.corpus import CASPIAN_WIRE, entries_in
from tests.factories import item_collected, rss
from tests.feed_server import FeedServer
from tests.integration.support import monitor, news_items, run_monitor, stop
from tests.waiting import eventually

pytestmark = pytest.mark.integration

# The catalogue fixture serves the Caspian Wire sample and a feed that is not there.
CATALOGUED_ITEMS = entries_in(CASPIAN_WIRE)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus' text format, or None when absent."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(match.group(3))
    return None


@pytest.fixture(scope="module")
async def metrics_after_a_run(
    own_broker: str, catalogue: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """`monitor run --web-port`: scrape /metrics until every item is tagged and a notice
    counted, then stop."""
    port = free_port()
    process = await monitor(
        "run",
        "--bootstrap",
        own_broker,
        "--feeds",
        str(catalogue),
        "--allow-network",
        "127.0.0.1/32",  # the feed server of this test runs on loopback
        "--interval",
        "5",  # a new feed's first poll lands somewhere in the first interval
        "--partitions",
        "1",  # items reach the escalation in the order they happened (README, "Order")
        "--web-port",
        str(port),
        "--data-dir",
        str(tmp_path_factory.mktemp("run-data")),
    )

    def settled(text: str) -> bool:
        """Every item tagged, a notice counted, and every record read and its offset
        committed: the worker can stop without lag."""
        tagged = sum(
            sample(text, "monitor_items_tagged_total", relevant=relevant) or 0
            for relevant in ("true", "false")
        )
        lags = re.findall(r"^monitor_consumer_lag\{.*\} (\S+)$", text, re.MULTILINE)
        routed = sample(text, "faust_topic_messages_sent_total", topic="topic.tension.by-dyad")
        escalated = sample(text, "faust_messages_received_per_topic_total", topic="tension.by-dyad")
        return (
            "monitor_notices_total{" in text
            and tagged >= CATALOGUED_ITEMS
            and bool(lags)
            and all(float(lag) == 0 for lag in lags)
            and routed == escalated
        )

    def counters(text: str) -> str:
        shown = [line for line in text.splitlines() if re.match(r"(monitor|faust_\w+_sent)", line)]
        return "the run did not settle; last scrape:\n" + "\n".join(shown)

    async with aiohttp.ClientSession() as session:

        async def scrape() -> str:
            try:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert response.status == 200
                    assert response.headers["Content-Type"].startswith("text/plain")
                    return await response.text()
            except aiohttp.ClientConnectionError:
                return ""  # the web server is not up yet

        try:
            text = await eventually(scrape, settled, timeout_s=90, every_s=0.5, describe=counters)
        finally:
            code, output = await stop(process)
    assert code == 0, output
    return text


def test_the_collectors_metrics_count_items_per_feed_and_polls_per_outcome(
    metrics_after_a_run: str,
) -> None:
    text = metrics_after_a_run

    collected = sample(text, "monitor_items_collected_total", feed="Caspian Wire", status="new")
    assert collected == CATALOGUED_ITEMS
    assert (sample(text, "monitor_feed_polls_total", feed="Caspian Wire", status="ok") or 0) >= 1
    assert (sample(text, "monitor_feed_polls_total", feed="Gone", status="error") or 0) >= 1
    assert sample(text, "monitor_feed_last_success_timestamp_seconds", feed="Caspian Wire")


def test_the_domain_metrics_follow_what_the_agents_emitted(metrics_after_a_run: str) -> None:
    text = metrics_after_a_run

    relevant = sample(text, "monitor_items_tagged_total", relevant="true") or 0
    irrelevant = sample(text, "monitor_items_tagged_total", relevant="false") or 0
    assert relevant + irrelevant == CATALOGUED_ITEMS
    assert relevant > 0
    assert (
        sample(text, "monitor_items_relevant_total", signal="armed_incident", lang="en") or 0
    ) > 0
    raised = [
        sample(text, "monitor_notices_total", level=level, kind="raised")
        for level in ("elevated", "high", "severe")
    ]
    assert any(raised), "the shoot-down raised the level"
    assert (sample(text, "monitor_tension_index", dyad="AZ-RU") or 0) > 0
    assert sample(text, "monitor_tension_level", dyad="AZ-RU") in {0, 1, 2, 3}


def test_faust_stream_metrics_are_on_the_same_page(metrics_after_a_run: str) -> None:
    text = metrics_after_a_run

    received = sample(text, "faust_messages_received_per_topic_total", topic="news.items")
    assert (received or 0) >= CATALOGUED_ITEMS
    assert sample(text, "faust_topic_messages_sent_total", topic="topic.news.tagged")
    assert "faust_events_runtime_ms_bucket" in text
    assert "faust_consumer_commit_latency_bucket" in text or "faust_consumer_commit_latency" in text
    assert "# TYPE monitor_consumer_lag gauge" in text


async def test_status_shows_the_level_the_lag_and_why_it_needs_attention(
    own_broker: str, metrics_after_a_run: str
) -> None:
    code, text = await run_monitor("status", "--bootstrap", own_broker)

    assert code == 1, text
    assert re.search(r"level +AZ-RU [A-Z]+, index \d+\.\d", text), text
    assert "consumer lag   baku-moscow-monitor:" in text
    assert "stale        Gone: last success never" in text
    assert "NEEDS ATTENTION" in text
    assert "1 stale feed(s): Gone" in text


async def test_status_json_is_one_document_for_scripts(
    own_broker: str, metrics_after_a_run: str
) -> None:
    code, output = await run_monitor("status", "--json", "--bootstrap", own_broker)
    document = json.loads(output)

    assert code == 1
    assert document["ok"] is False
    assert document["states"][0]["dyad"] == "AZ-RU"
    items, ticks = await news_items(Settings(bootstrap=own_broker))
    assert len(items) == CATALOGUED_ITEMS
    assert ticks, "the collector recorded that time passed"
    assert document["records"]["news.items"] == len(items) + len(ticks)
    assert document["consumer_lag"]["baku-moscow-monitor"]["total"] == 0, "all caught up"
    feeds = {feed["source"]: feed for feed in document["feeds"]}
    assert feeds["Caspian Wire"]["stale"] is False
    assert feeds["Gone"]["stale"] is True
    assert document["dead_letters"]["total"] == 0


async def test_status_without_a_broker_says_so_and_exits_2() -> None:
    code, output = await run_monitor(
        "status", "--bootstrap", f"127.0.0.1:{free_port()}", "--timeout", "1"
    )

    assert code == 2
    assert "status unknown: no Kafka broker answered" in output


async def test_status_counts_what_a_stopped_worker_has_not_read_yet(
    own_broker: str, metrics_after_a_run: str
) -> None:
    # The worker of `monitor run` has stopped; more items arrive, in one batch.
    now, max_lag = utc_now(), 3
    late = [item_collected(f"late-{n}", f"Late item {n}", at=now) for n in range(max_lag + 2)]
    async with producer(Settings(bootstrap=own_broker)) as client:
        await publish(client, [Outgoing.of(NEWS_ITEMS, item.item_id, item) for item in late])

    _, output = await run_monitor(
        "status", "--json", "--max-lag", str(max_lag), "--bootstrap", own_broker
    )
    document = json.loads(output)

    assert document["consumer_lag"]["baku-moscow-monitor"]["news.items"] == len(late)
    items_now, ticks = await news_items(Settings(bootstrap=own_broker))
    assert len(items_now) == CATALOGUED_ITEMS + len(late)
    assert document["records"]["news.items"] == len(items_now) + len(ticks)
    assert (
        f"consumer group baku-moscow-monitor is {len(late)} records behind (more than {max_lag})"
        in document["attention"]
    )


async def test_polls_and_ticks_the_broker_refuses_are_counted_for_alerting(
    feed_server: FeedServer,
) -> None:
    metrics = Metrics()
    feed = FeedSpec(url=feed_server.serve("steady", rss(("s-1", "Steady", "s"))), name="steady")
    async with EmbeddedBroker() as broker:
        settings = Settings(bootstrap=broker.bootstrap, allow_networks=("127.0.0.1/32",))
        await ensure_topics(settings)
        options = replace(
            CollectorOptions.from_settings(settings),
            schedule=SchedulePolicy(interval_s=1.0),  # the first poll within a second
        )
        # The collector's client, with a short wait for a broker that does not answer.
        client = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=1000)
        await client.start()
    # The broker is gone; the collector starts its loop all the same.
    stop = asyncio.Event()
    try:
        async with guarded_session(options.policy) as session:
            collector = Collector([feed], client, session, options, utc_now)
            collector.on_write_failure = metrics.on_write_failure
            loop = asyncio.create_task(collector.run(stop))

            def failures() -> dict[str, float | None]:
                return {
                    what: metrics.registry.get_sample_value(
                        "monitor_collector_write_failures_total", {"what": what}
                    )
                    for what in ("poll", "tick")
                }

            counted = await eventually(
                failures, lambda found: all(found.values()), timeout_s=30, every_s=0.2
            )
            stop.set()
            await loop
    finally:
        await client.stop()

    assert counted["poll"] >= 1
    assert counted["tick"] >= 1
    assert collector.state_of(feed).published == {}, "nothing counts as published"
