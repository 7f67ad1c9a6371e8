"""The roles as users start them: `monitor broker`, `monitor collect --once`, `monitor alerts`."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from monitor.broker import free_port, wait_until_ready
from monitor.config import Settings
from monitor.topics import FEEDS_HEALTH
from schemas import FeedPolled
from tests.corpus import CASPIAN_WIRE, entries_in
from tests.integration.support import events, monitor, news_items, run_monitor, stop, succeeds
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def test_monitor_broker_serves_kafka_until_ctrl_c() -> None:
    port = free_port()
    process = await monitor("broker", "--port", str(port))
    try:
        await wait_until_ready(f"127.0.0.1:{port}", timeout_s=30)
    finally:
        code, text = await stop(process, signal.SIGINT, timeout_s=30)
    assert code == 0, text
    assert f"ready at 127.0.0.1:{port}" in text
    assert "stopped" in text


async def test_collect_once_publishes_the_items_and_a_health_record_per_feed(
    own_broker: str, catalogue: Path
) -> None:
    code, text = await run_monitor(
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
    served = entries_in(CASPIAN_WIRE)
    assert code == 0, text
    assert f"2 feeds (1 ok, 1 failed), {served} new items published" in text

    settings = Settings(bootstrap=own_broker)
    items, _ = await news_items(settings)
    assert len(items) == served
    assert {i.source for i in items} == {"Caspian Wire"}
    health = {p.source: p for p in await events(settings, FEEDS_HEALTH, FeedPolled)}
    assert health["Caspian Wire"].status == "ok"
    assert health["Caspian Wire"].items_new == served
    assert health["Gone"].status == "error"
    assert health["Gone"].http_status == 404


async def test_a_worker_turns_the_collected_items_into_notices_that_alerts_prints(
    own_broker: str, tmp_path: Path
) -> None:
    worker = await monitor(
        "worker", "--bootstrap", own_broker, env={"MONITOR_DATA_DIR": str(tmp_path)}
    )

    async def alerts() -> list[dict[str, Any]]:
        output = await succeeds("alerts", "--from-beginning", "--json", "--bootstrap", own_broker)
        return [json.loads(line) for line in output.splitlines()]

    try:
        notices = await eventually(alerts, timeout_s=90, every_s=0.5)
    finally:
        code, output = await stop(worker)
    assert code == 0, output
    assert notices[0]["kind"] == "raised"
    assert all(n["dyad"] == "AZ-RU" for n in notices)
    assert all(str(n["notice_id"]).startswith("n-") for n in notices)
