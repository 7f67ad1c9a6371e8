"""Where the web endpoints listen: this machine only, unless told otherwise; and the
worker's table views, which show the whole escalation state, only when asked for.

Each role runs as a user starts it; the addresses are read from the kernel's
table of listening sockets (psutil), not from what the process says.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import psutil
import pytest

from monitor.broker import free_port
from tests.integration.support import monitor, stop
from tests.waiting import eventually

pytestmark = pytest.mark.integration


def listening_on(port: int) -> set[str]:
    """The addresses a socket listens on at `port`, on this machine."""
    return {
        connection.laddr.ip
        for connection in psutil.net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN
        and connection.laddr
        and connection.laddr.port == port
    }


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def answering(url: str) -> tuple[int, str]:
    """GET `url` once the server behind it answers."""

    async def attempt() -> tuple[int, str] | None:
        try:
            return await get(url)
        except aiohttp.ClientError:
            return None

    def answered(answer: tuple[int, str] | None) -> bool:
        return answer is not None

    found = await eventually(attempt, answered, timeout_s=90)
    assert found is not None
    return found


@asynccontextmanager
async def running(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[None]:
    process = await monitor(*args, env=env)
    try:
        yield
    finally:
        code, output = await stop(process, signal.SIGINT)
        assert code == 0, output


def worker_args(bootstrap: str, data_dir: Path, port: int) -> list[str]:
    return [
        "worker",
        "--bootstrap",
        bootstrap,
        "--data-dir",
        str(data_dir),
        "--web-port",
        str(port),
        "--rebalance-timeout",
        "4",
    ]


async def test_a_worker_serves_metrics_on_loopback_only_and_no_table_views(
    own_broker: str, tmp_path: Path
) -> None:
    port = free_port()
    async with running(*worker_args(own_broker, tmp_path / "faust", port)):
        status, metrics = await answering(f"http://127.0.0.1:{port}/metrics")
        addresses = listening_on(port)
        tables, _ = await get(f"http://127.0.0.1:{port}/table/")
        router, _ = await get(f"http://127.0.0.1:{port}/router/")

    assert status == 200
    assert "monitor_broker_up" in metrics
    assert addresses == {"127.0.0.1"}
    assert (tables, router) == (404, 404), "the escalation state is not on show by default"


async def test_a_worker_told_to_listens_everywhere_and_shows_its_tables(
    own_broker: str, tmp_path: Path
) -> None:
    port = free_port()
    told = {"MONITOR_WEB_HOST": "0.0.0.0", "MONITOR_WEB_TABLE_VIEWS": "true"}
    async with running(*worker_args(own_broker, tmp_path / "faust", port), env=told):
        await answering(f"http://127.0.0.1:{port}/metrics")
        addresses = listening_on(port)
        status, tables = await get(f"http://127.0.0.1:{port}/table/")

    assert addresses == {"0.0.0.0"}
    assert status == 200
    assert "tension" in tables


async def test_a_collector_serves_its_metrics_on_loopback_only(
    own_broker: str, catalogue: Path
) -> None:
    port = free_port()
    collector = [
        "collect",
        "--bootstrap",
        own_broker,
        "--feeds",
        str(catalogue),
        "--allow-network",
        "127.0.0.0/8",
        "--web-port",
        str(port),
    ]
    async with running(*collector):
        status, _ = await answering(f"http://127.0.0.1:{port}/metrics")
        addresses = listening_on(port)

    assert status == 200
    assert addresses == {"127.0.0.1"}


@pytest.mark.parametrize(
    ("env", "expected"), [({}, "127.0.0.1"), ({"MONITOR_DASHBOARD_HOST": "0.0.0.0"}, "0.0.0.0")]
)
async def test_the_dashboard_listens_on_loopback_unless_told_otherwise(
    own_broker: str, env: dict[str, str], expected: str
) -> None:
    port = free_port()
    async with running("dashboard", "--bootstrap", own_broker, "--port", str(port), env=env):
        status, _ = await answering(f"http://127.0.0.1:{port}/")
        addresses = listening_on(port)

    assert status == 200
    assert addresses == {expected}
