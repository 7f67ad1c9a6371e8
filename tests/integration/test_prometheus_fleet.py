"""A fleet as operators watch it: a real Prometheus scraping two workers and a collector.

Prometheus (Debian's package; the test skips without it, CI installs it) runs
on a free loopback port with a configuration made here: it scrapes two
`monitor worker` processes of one consumer group, each on its own web port,
and a `monitor collect`, every second, and loads the alerting rules that
docker compose loads. Then every query of the bundled Grafana dashboard must
return data through Prometheus' HTTP API, and every rule must evaluate
without error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from monitor.broker import free_port
from monitor.config import Settings
from monitor.kafka import producer, publish
from monitor.records import Outgoing
from monitor.topics import NEWS_ITEMS, ensure_topics
from tests.integration.support import monitor, stop, worker_env
from tests.prometheus import ROOT, RULES, prometheus_binary
from tests.waiting import eventually

pytestmark = pytest.mark.integration

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "monitor.json"
SCRAPE_EVERY = "1s"
READERS_OF_NEWS_ITEMS = (
    'sum by (instance) (faust_messages_received_per_topic_total{topic="news.items"})'
)
# Grafana's own variables, as Grafana would fill them for a scrape every second.
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}


# -- the dashboard's queries ------------------------------------------------------


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    expr: str


def dashboard_queries() -> list[PanelQuery]:
    """Every target of every panel (rows' nested panels too), its variables filled in."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    values = dict(GRAFANA_VARIABLES)
    for variable in dashboard.get("templating", {}).get("list", []):
        current = (variable.get("current") or {}).get("value")
        if isinstance(current, list):
            current = "|".join(current)
        # Unset or "All": every value, as a regex matcher (=~"$var") takes it.
        values[variable["name"]] = ".*" if current in (None, "", "$__all") else str(current)
    panels = list(dashboard["panels"])
    for row in dashboard["panels"]:
        panels += row.get("panels", [])
    return [
        PanelQuery(panel["title"], fill(target["expr"], values))
        for panel in panels
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def fill(expr: str, values: dict[str, str]) -> str:
    """$name, ${name} and [[name]] replaced the way Grafana does."""

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        assert name in values, f"{expr}: no value for the variable {name}"
        return values[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", value, expr)


def alert_names() -> set[str]:
    return {
        rule["alert"]
        for path in RULES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    }


def has_data(result: list[dict[str, Any]]) -> bool:
    """At least one series with a number (NaN is what Grafana shows as no data)."""
    return any(math.isfinite(float(series["value"][1])) for series in result)


# -- the processes ------------------------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    prometheus: str  # http://127.0.0.1:PORT
    workers: tuple[str, ...]  # 127.0.0.1:PORT of each worker's /metrics
    collector: str


def prometheus_config(fleet: Fleet) -> dict[str, Any]:
    """The shape of deploy/prometheus/prometheus.yml, with the test's own targets."""
    return {
        "global": {"scrape_interval": SCRAPE_EVERY, "evaluation_interval": SCRAPE_EVERY},
        "rule_files": [str(path) for path in RULES],
        "scrape_configs": [
            {"job_name": "worker", "static_configs": [{"targets": list(fleet.workers)}]},
            {"job_name": "collector", "static_configs": [{"targets": [fleet.collector]}]},
        ],
    }


@contextlib.asynccontextmanager
async def running_prometheus(fleet: Fleet, directory: Path) -> AsyncIterator[None]:
    """Prometheus on its own port and data directory; stopped (and waited for) after."""
    binary = prometheus_binary("prometheus")
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(fleet)), encoding="utf-8")
    log_path = directory / "prometheus.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address={fleet.prometheus.removeprefix('http://')}",
            "--log.level=warn",
            stdout=log,
            stderr=log,
        )
        try:
            async with aiohttp.ClientSession() as session:

                async def ready() -> bool:
                    assert process.returncode is None, log_path.read_text()
                    try:
                        async with session.get(f"{fleet.prometheus}/-/ready") as response:
                            return response.status == 200
                    except aiohttp.ClientConnectionError:
                        return False

                await eventually(ready, timeout_s=30)
            yield
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), timeout=20)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def query(session: aiohttp.ClientSession, base: str, expr: str) -> list[dict[str, Any]]:
    async with session.get(f"{base}/api/v1/query", params={"query": expr}) as response:
        body = await response.json()
    assert body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def rules(session: aiohttp.ClientSession, base: str) -> list[dict[str, Any]]:
    async with session.get(f"{base}/api/v1/rules") as response:
        body = await response.json()
    return [rule for group in body["data"]["groups"] for rule in group["rules"]]


# -- the test -------------------------------------------------------------------------


async def test_prometheus_scrapes_the_fleet_and_every_dashboard_query_has_data(
    own_broker: str, catalogue: Path, tmp_path: Path
) -> None:
    prometheus_binary("prometheus")  # skip before starting anything
    queries = dashboard_queries()
    fleet = Fleet(
        prometheus=f"http://127.0.0.1:{free_port()}",
        workers=(f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"),
        collector=f"127.0.0.1:{free_port()}",
    )
    # Two partitions of news.items, so that each worker of the group gets one.
    settings = Settings(bootstrap=own_broker, partitions=2, rebalance_timeout_s=4.0)
    await ensure_topics(settings)
    env = {**worker_env(settings), "MONITOR_SESSION_TIMEOUT": "6"}
    processes: list[asyncio.subprocess.Process] = []
    async with running_prometheus(fleet, tmp_path), aiohttp.ClientSession() as session:
        try:
            for number, address in enumerate(fleet.workers):
                worker_dir = tmp_path / f"worker-{number}"
                processes.append(
                    await monitor(
                        "worker",
                        "--web-port",
                        address.rpartition(":")[2],
                        env={**env, "MONITOR_DATA_DIR": str(worker_dir)},
                    )
                )
            processes.append(
                await monitor(
                    "collect",
                    "--feeds",
                    str(catalogue),
                    "--allow-network",
                    "127.0.0.1/32",  # the catalogue's feed server is on loopback
                    "--interval",
                    "5",  # a feed's first poll comes within the first interval
                    "--tick-interval",
                    "2",  # time passes on every partition: both workers keep busy
                    "--web-port",
                    fleet.collector.rpartition(":")[2],
                    env=env,
                )
            )
            # A record no one can read: the tagger dead-letters it.
            async with producer(settings) as client:
                await publish(client, [Outgoing(NEWS_ITEMS, b"bad", b"{not json")])

            async def empty_queries() -> list[PanelQuery]:
                return [
                    q
                    for q in queries
                    if not has_data(await query(session, fleet.prometheus, q.expr))
                ]

            def listed(missing: list[PanelQuery]) -> str:
                return "no data for:\n" + "\n".join(f"  {q.panel}: {q.expr}" for q in missing)

            await eventually(
                empty_queries, lambda missing: not missing, timeout_s=90, every_s=1, describe=listed
            )

            # Both workers read news.items, and only the one that escalates shows the level.
            readers = await eventually(
                lambda: query(session, fleet.prometheus, READERS_OF_NEWS_ITEMS),
                lambda result: len(result) == len(fleet.workers),
                timeout_s=30,
            )
            shown = await eventually(
                lambda: query(session, fleet.prometheus, "count by (dyad) (monitor_tension_level)"),
                lambda result: [s["value"][1] for s in result] == ["1"],
                timeout_s=30,
            )
            # Every rule evaluated once at least ("unknown" until then).
            evaluated = await eventually(
                lambda: rules(session, fleet.prometheus),
                lambda found: all(rule["health"] != "unknown" for rule in found),
                timeout_s=30,
            )
        finally:
            stopped = [await stop(process) for process in processes]
    assert {series["metric"]["instance"] for series in readers} == set(fleet.workers)
    assert shown[0]["metric"]["dyad"] == "AZ-RU"
    assert {rule["name"] for rule in evaluated} == alert_names()
    unhealthy = [
        (rule["name"], rule.get("lastError")) for rule in evaluated if rule["health"] != "ok"
    ]
    assert not unhealthy, unhealthy
    for code, output in stopped:
        assert code == 0, output
