"""Prometheus metrics: Faust's stream metrics plus the domain's, in one registry.

Faust's own sensor (`faust.sensors.prometheus`) counts events in and out per
topic, processing and commit latency, table operations and offsets. The
domain metrics are derived from the records the agents emit (every record
passes through `observe`) and from the collector's poll outcomes, so no
agent has to know that it is being measured.

Each process builds one `Metrics` with a registry of its own: the default
global registry would refuse a second pipeline in the same process (tests,
the demo) with "Duplicated timeseries".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence, Set
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from faust.sensors import Sensor
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.config import Settings
from monitor.kafka import read_topic
from monitor.records import Outgoing
from monitor.topics import (
    ALERTS_ESCALATIONS,
    NEWS_DEADLETTER,
    NEWS_TAGGED,
    TENSION_BY_DYAD,
    TENSION_STATE,
)
from monitor.web import serving
from schemas import LEVELS, DeadLetter, EscalationNotice, FeedPolled, ItemTagged, TensionState
from schemas import decode as decode_event

log = logging.getLogger(__name__)

# Faust's metric names start with this instead of the app id, so that
# dashboards and alert rules survive a renamed application.
FAUST_PREFIX = "faust"
LEVEL_NUMBER = {level: number for number, level in enumerate(LEVELS)}
# What a collector writes to the broker, and may fail to: a poll's items, health and
# memory; the clock tick that tells the escalator time has passed.
COLLECTOR_WRITES = ("poll", "tick")


class Metrics:
    """The domain's metrics, registered in `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.feed_polls = Counter(
            "monitor_feed_polls", "Feed polls by outcome", ["feed", "status"], registry=r
        )
        self.items_collected = Counter(
            "monitor_items_collected",
            "Items a collector read, by feed and whether they were new",
            ["feed", "status"],
            registry=r,
        )
        self.feed_last_success = Gauge(
            "monitor_feed_last_success_timestamp_seconds",
            "When each feed was last read successfully (Unix time)",
            ["feed"],
            registry=r,
        )
        self.items_tagged = Counter(
            "monitor_items_tagged", "Items tagged, relevant or not", ["relevant"], registry=r
        )
        self.items_relevant = Counter(
            "monitor_items_relevant",
            "Relevant tagged items per signal and language (an item counts once per signal)",
            ["signal", "lang"],
            registry=r,
        )
        self.dead_letters = Counter(
            "monitor_dead_letters",
            "Records sent to news.deadletter, by stage and error type",
            ["stage", "error_type"],
            registry=r,
        )
        self.notices = Counter(
            "monitor_notices", "Escalation notices by level and kind", ["level", "kind"], registry=r
        )
        self.tension_index = Gauge(
            "monitor_tension_index", "Current tension index per dyad", ["dyad"], registry=r
        )
        self.tension_level = Gauge(
            "monitor_tension_level",
            "Current level per dyad: 0 calm, 1 elevated, 2 high, 3 severe",
            ["dyad"],
            registry=r,
        )
        self.broker_up = Gauge(
            "monitor_broker_up",
            "1 when this process reached the broker at its last look",
            registry=r,
        )
        self.broker_resets = Counter(
            "monitor_broker_resets",
            "Times the broker came back as another cluster: its log is not the one before",
            registry=r,
        )
        self.collector_write_failures = Counter(
            "monitor_collector_write_failures",
            "Polls and clock ticks the collector could not record on the broker (tried again)",
            ["what"],
            registry=r,
        )
        self.event_seconds = Histogram(
            "monitor_event_processing_seconds",
            "From an agent reading a record to the broker acknowledging what it produced",
            ["topic"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self._tension_shown: set[str] = set()  # dyads shown since this worker took them
        # Both series exist from the start, so that the first failure is an increase.
        for what in COLLECTOR_WRITES:
            self.collector_write_failures.labels(what=what)

    # -- the stream processors' records ----------------------------------------

    def observe(self, outgoing: Sequence[Outgoing]) -> None:
        """Count what the agents emitted. Never raises: metrics must not stop a stream."""
        for record in outgoing:
            try:
                self._observe_one(record)
            except ValueError as error:  # an undecodable record of our own: say so, go on
                log.warning("metrics: cannot read a %s record: %s", record.topic.name, error)

    def _observe_one(self, record: Outgoing) -> None:
        topic = record.topic
        if topic is NEWS_TAGGED:
            item = decode_event(ItemTagged, record.value)
            self.items_tagged.labels(relevant=str(item.relevant).lower()).inc()
            if item.relevant:
                lang = item.lang or "unknown"
                signals: list[str] = list(item.signals) or ["none"]
                for signal in signals:
                    self.items_relevant.labels(signal=signal, lang=lang).inc()
        elif topic is NEWS_DEADLETTER:
            letter = decode_event(DeadLetter, record.value)
            self.dead_letters.labels(stage=letter.stage, error_type=letter.error_type).inc()
        elif topic is ALERTS_ESCALATIONS:
            notice = decode_event(EscalationNotice, record.value)
            self.notices.labels(level=notice.level, kind=notice.kind).inc()
        elif topic is TENSION_STATE:
            self._show_tension(decode_event(TensionState, record.value))

    def _show_tension(self, state: TensionState) -> None:
        self.tension_index.labels(dyad=state.dyad).set(state.index)
        self.tension_level.labels(dyad=state.dyad).set(LEVEL_NUMBER[state.level])
        self._tension_shown.add(state.dyad)

    # -- the collectors ----------------------------------------------------------

    def on_poll(self, poll: FeedPolled) -> None:
        self.feed_polls.labels(feed=poll.source, status=poll.status).inc()
        self.items_collected.labels(feed=poll.source, status="new").inc(poll.items_new)
        self.items_collected.labels(feed=poll.source, status="seen").inc(poll.items_seen)
        if poll.status != "error":
            self.feed_last_success.labels(feed=poll.source).set(poll.polled_at.timestamp())

    def on_write_failure(self, what: str) -> None:
        """The collector could not record a poll or a clock tick (`COLLECTOR_WRITES`)."""
        self.collector_write_failures.labels(what=what).inc()

    # -- which worker shows the level ---------------------------------------------
    #
    # Only the worker that escalates a dyad (holds its tension.by-dyad partition)
    # shows its level and index: one that lost the dyad to another worker of the
    # group would go on showing the level of that moment, and one that took it
    # over would show nothing until the dyad's next state. So at each assignment
    # the gauges are dropped or, where this worker escalates, started from the
    # latest state on tension.state (unless the escalator got there first).

    def forget_tension(self) -> None:
        """Drop the level and index gauges: this process does not escalate any dyad."""
        self.tension_index.clear()
        self.tension_level.clear()
        self._tension_shown.clear()

    def take_over_tension(self) -> None:
        """This process escalates now: what the escalator shows from here on wins."""
        self._tension_shown.clear()

    async def resume_tension(self, settings: Settings) -> None:
        """Show the latest state of every dyad on tension.state (unless shown since
        `take_over_tension`)."""
        latest: dict[str, TensionState] = {}
        async for record in read_topic(settings, TENSION_STATE):
            state = decode_event(TensionState, record.value)
            latest[state.dyad] = state
        for dyad, state in latest.items():
            if dyad not in self._tension_shown:
                self._show_tension(state)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return _generate_latest(self.registry)


class ConsumerLag(Collector):
    """Consumer lag per topic partition, computed at scrape time from Faust's monitor.

    Faust's sensor exports the end offset and the committed offset as two
    gauges; this is their difference, ready for a graph or an alert rule. Faust
    forgets both at every rebalance, so a worker only reports the partitions it
    holds now. Until it first commits on a partition it was just given, the
    committed offset is the one it resumed from (not 0: that would count the
    partition's whole history as lag).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "monitor_consumer_lag",
            "Records not yet committed by this worker, per topic partition",
            labels=["topic", "partition"],
        )
        monitor = self.app.monitor
        ends = dict(getattr(monitor, "tp_end_offsets", None) or {})
        committed = dict(getattr(monitor, "tp_committed_offsets", None) or {})
        # Faust keeps where each assigned partition resumed in a private mapping.
        resumed = getattr(self.app.consumer, "_committed_offset", None) or {}
        for tp, end in sorted(ends.items()):
            offset = committed.get(tp, resumed.get(tp))
            if offset is None:
                continue  # not known yet: no number rather than a wrong one
            family.add_metric([tp.topic, str(tp.partition)], max(0, int(end) - int(offset)))
        yield family


class EventLatency(Sensor):
    """Times each record from the moment a stream reads it to the moment it is acked.

    Faust's own `faust_events_runtime_ms` stays empty for the monitor's agents:
    they ack by hand, once what a record produced is delivered, and Faust then
    calls its sensors without the state it timed the record by. This sensor
    keeps the start time by partition and offset instead.
    """

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self.metrics = metrics
        self.read_at: dict[tuple[Any, int], float] = {}

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self.read_at[(tp, offset)] = time.monotonic()

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        started = self.read_at.pop((tp, offset), None)
        if started is not None:
            self.metrics.event_seconds.labels(topic=tp.topic).observe(time.monotonic() - started)

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        self.read_at.clear()  # records not acked by now are read again, and timed then
        state: dict[str, Any] = super().on_rebalance_start(app)
        return state


def serve_web_views(app: Any, settings: Settings) -> None:
    """What Faust's web server of `app` listens on and shows, before it is built.

    It listens where the settings say (this machine only by default: Faust's own
    default is every interface). Its /table views, which list every key and value
    of the escalation's table, and its /router views (which worker owns which key,
    for table views across workers) are served only when asked for.
    """
    app.conf.web_bind = settings.web_host
    app.conf.web_tables_enabled = settings.web_table_views
    app.conf.web_router_enabled = settings.web_table_views


def instrument(app: Any, metrics: Metrics, settings: Settings, path: str = "/metrics") -> None:
    """Attach Faust's Prometheus sensor and our collectors to `app`; serve them at `path`.

    The page is served by Faust's own web server, so the app must be created
    with the web server enabled (`Settings.web_port`).
    """
    from faust.sensors.prometheus import setup_prometheus_sensors

    setup_prometheus_sensors(app, pattern=path, registry=metrics.registry, name_prefix=FAUST_PREFIX)
    metrics.registry.register(ConsumerLag(app))
    app.sensors.add(EventLatency(metrics))
    resuming: set[asyncio.Task[None]] = set()

    @app.on_partitions_assigned.connect  # type: ignore[untyped-decorator]
    async def show_the_dyads_escalated_here(_app: Any, assigned: Set[Any], **_: Any) -> None:
        if not any(tp.topic == TENSION_BY_DYAD.name for tp in assigned):
            metrics.forget_tension()
            return
        metrics.take_over_tension()
        # In the background: a rebalance must not wait for a topic to be read.
        task = asyncio.create_task(resume_quietly(metrics, settings))
        resuming.add(task)
        task.add_done_callback(resuming.discard)

    @app.on_before_shutdown.connect  # type: ignore[untyped-decorator]
    async def stop_resuming(_app: Any, **_: Any) -> None:
        for task in list(resuming):
            task.cancel()
        await asyncio.gather(*resuming, return_exceptions=True)


async def resume_quietly(metrics: Metrics, settings: Settings) -> None:
    try:
        await metrics.resume_tension(settings)
    except Exception as error:  # the gauges wait for the next state; the stream goes on
        log.warning("metrics: cannot read the latest states on tension.state: %s", error)


@asynccontextmanager
async def serve_metrics(metrics: Metrics, port: int, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """Serve /metrics on its own small web server (for processes without Faust's).

    Yields the port actually bound (pass 0 for any free one).
    """

    async def handle(_request: web.Request) -> web.Response:
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/metrics", handle)
    async with serving(app, host, port) as bound:
        yield bound


@asynccontextmanager
async def collector_metrics(settings: Settings) -> AsyncIterator[Metrics]:
    """A collector's metrics, served at /metrics when `settings.web_port` is set."""
    metrics = Metrics()
    if settings.web_port is None:
        yield metrics
        return
    async with serve_metrics(metrics, settings.web_port, settings.web_host):
        yield metrics
