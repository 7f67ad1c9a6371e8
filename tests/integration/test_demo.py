"""The README's first command: `monitor demo` runs the whole pipeline and exits 0."""

from __future__ import annotations

import pytest

from tests.corpus import entries_in, is_well_formed, sample_feeds
from tests.integration.support import run_monitor

pytestmark = pytest.mark.integration


async def test_the_demo_runs_the_sample_feeds_end_to_end_and_reports_notices() -> None:
    feeds = sample_feeds()
    entries = sum(entries_in(feed) for feed in feeds)
    # A feed that is not well-formed XML is still read, with a parse warning.
    broken = sum(not is_well_formed(feed) for feed in feeds)

    code, text = await run_monitor("demo", timeout_s=180)

    assert code == 0, text
    summary = text[text.index("Summary") :]
    assert f"items collected: {entries}" in summary
    assert f"({len(feeds)} ok, 0 failed, {broken} read with parse warnings)" in summary, summary
    assert "dead letters:    0" in summary
    # The shoot-down and the Yekaterinburg raids raise the level; Dushanbe lowers it.
    assert "▲ RAISED AZ-RU" in text
    assert "▼ LOWERED AZ-RU" in text
    assert "Dushanbe" in text or "Душанбе" in text
