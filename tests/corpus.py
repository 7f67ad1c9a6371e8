"""The data the tests hold the code against, and what it holds, counted from the files.

Expected counts come from here rather than from a run's output: a test that says
"every entry of the sample feed is published" stays true when the feed grows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from monitor.config import SAMPLES_DIR

DATA = Path(__file__).parent / "data"
# The labelled corpus: one item a line, with its gold relevance and signals.
DEV_CORPUS = DATA / "dev.jsonl"
# Story labels of part of it: {"id": …, "story": …} a line.
DEV_STORIES = DATA / "dev_stories.jsonl"

# The demo's sample feeds, and the one the integration catalogue serves.
SAMPLE_FEEDS = SAMPLES_DIR / "feeds"
CASPIAN_WIRE = SAMPLE_FEEDS / "caspian-wire.xml"

_ENTRY = re.compile(rb"<(?:item|entry)[\s>]")


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def entries_in(feed: Path) -> int:
    """How many items (RSS) or entries (Atom) the feed file holds, read as plain text."""
    return len(_ENTRY.findall(feed.read_bytes()))


def is_well_formed(feed: Path) -> bool:
    try:
        ElementTree.parse(feed)
    except ElementTree.ParseError:
        return False
    return True


def sample_feeds() -> list[Path]:
    return sorted(SAMPLE_FEEDS.glob("*.xml"))
