"""The README's first command: `monitor demo` runs the whole pipeline and exits 0."""

from __future__ import annotations

import asyncio
import sys

import pytest

pytestmark = pytest.mark.integration


async def test_the_demo_runs_the_sample_feeds_end_to_end_and_reports_notices() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        "demo",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=180)
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0, text
    summary = text[text.index("Summary") :]
    assert "items collected: 146" in summary
    assert "(8 ok, 0 failed, 1 read with parse warnings)" in summary, summary
    assert "dead letters:    0" in summary
    # The shoot-down and the Yekaterinburg raids raise the level; Dushanbe lowers it.
    assert "▲ RAISED AZ-RU" in text
    assert "▼ LOWERED AZ-RU" in text
    assert "Dushanbe" in text or "Душанбе" in text
