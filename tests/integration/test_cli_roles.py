"""The roles as users start them: `monitor broker`, `monitor collect --once`, `monitor alerts`."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from monitor.broker import free_port, wait_until_ready
from monitor.config import Settings
from monitor.kafka import read_topic
from monitor.topics import FEEDS_HEALTH
from schemas import FeedPolled, decode
from tests.integration.support import monitor, news_items

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).parents[2] / "monitor" / "samples" / "feeds"


async def test_monitor_broker_serves_kafka_until_ctrl_c() -> None:
    port = free_port()
    process = await monitor("broker", "--port", str(port))
    try:
        await wait_until_ready(f"127.0.0.1:{port}", timeout_s=30)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    text = output.decode()
    assert process.returncode == 0, text
    assert f"ready at 127.0.0.1:{port}" in text
    assert "stopped" in text


async def test_collect_once_publishes_the_items_and_a_health_record_per_feed(
    own_broker: str, catalogue: Path
) -> None:
    process = await monitor(
        "collect",
        "--once",
        "--feeds",
        str(catalogue),
        "--bootstrap",
        own_broker,
        # The feeds are served on loopback, which collectors refuse unless allowed.
        "--allow-network",
        "127.0.0.1/32",
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode()
    assert process.returncode == 0, text
    assert "2 feeds (1 ok, 1 failed), 25 new items published" in text

    settings = Settings(bootstrap=own_broker)
    items, _ = await news_items(settings)
    assert len(items) == 25
    assert {i.source for i in items} == {"Caspian Wire"}
    health = {
        p.source: p
        for p in [decode(FeedPolled, r.value) async for r in read_topic(settings, FEEDS_HEALTH)]
    }
    assert health["Caspian Wire"].status == "ok"
    assert health["Caspian Wire"].items_new == 25
    assert health["Gone"].status == "error"
    assert health["Gone"].http_status == 404


async def test_a_worker_turns_the_collected_items_into_notices_that_alerts_prints(
    own_broker: str, tmp_path: Path
) -> None:
    worker = await monitor(
        "worker", "--bootstrap", own_broker, env={"MONITOR_DATA_DIR": str(tmp_path)}
    )
    notices: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(90):
            while not notices:
                alerts = await monitor(
                    "alerts", "--from-beginning", "--json", "--bootstrap", own_broker
                )
                output, _ = await alerts.communicate()
                assert alerts.returncode == 0, output.decode()
                notices = [json.loads(line) for line in output.decode().splitlines()]
                await asyncio.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker_output, _ = await asyncio.wait_for(worker.communicate(), timeout=60)
    assert worker.returncode == 0, worker_output.decode()
    assert notices[0]["kind"] == "raised"
    assert all(n["dyad"] == "AZ-RU" for n in notices)
    assert all(str(n["notice_id"]).startswith("n-") for n in notices)
