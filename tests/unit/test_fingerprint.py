"""The fingerprint is persisted (escalator state) and sent (ItemTagged): its value never moves.

`monitor.fingerprint.fingerprint` counts bits in byte lanes and caches each word's
hash, for speed. Here it is held to SimHash as the docstring defines it, written
the slow and obvious way, on every text of the corpora and on generated text;
a few values persisted by earlier versions are pinned too.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from monitor.fingerprint import FINGERPRINT_BITS, distance, fingerprint

DATA = Path(__file__).resolve().parents[1] / "data"
# Computed by the first version (monitor.escalation.stories at 8c4c14a).
PINNED_SUMMONS = "c298481a202504a7"
PINNED_CYRILLIC = "7e7d9a7062377c4c"


def simhash(text: str) -> int:
    """Bit b is set when more than half of the text's first 255 distinct words (two or
    more word characters, case-folded) have bit b set in their 8-byte blake2b hash."""
    words = list(dict.fromkeys(re.findall(r"\w{2,}", text.casefold())))[:255]
    hashes = [
        int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")
        for word in words
    ]
    return sum(
        1 << bit
        for bit in range(FINGERPRINT_BITS)
        if sum((value >> bit) & 1 for value in hashes) > len(words) / 2
    )


def corpus_texts() -> list[str]:
    texts = []
    for path in sorted(DATA.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                texts.append(f"{record.get('title', '')} {record.get('summary', '')}")
    return texts


def test_every_corpus_text_fingerprints_as_simhash_defines_it() -> None:
    texts = corpus_texts()
    assert len(texts) > 1000
    for text in texts:
        assert fingerprint(text) == simhash(text), text
        # Twice: the second time the words' hashes come from the cache.
        assert fingerprint(text) == simhash(text), text


@given(st.lists(st.sampled_from(["Baku", "Moscow", "a", "Ğ", "x" * 30, "ə1", "_"]), max_size=300))
def test_generated_texts_fingerprint_as_simhash_defines_it(words: list[str]) -> None:
    text = " ".join(words)
    assert fingerprint(text) == simhash(text)


def test_more_than_255_distinct_words_count_the_first_255() -> None:
    text = " ".join(f"word{number}" for number in range(400))
    assert fingerprint(text) == simhash(text) == fingerprint(text.rsplit(" ", 145)[0])


def test_values_persisted_by_earlier_versions_still_come_out() -> None:
    # Such values are in tension.state and on news.tagged: a change would split stories.
    assert fingerprint("") == 0
    assert fingerprint("a") == 0
    assert f"{fingerprint('Moscow summons Azerbaijan ambassador'):016x}" == PINNED_SUMMONS
    assert f"{fingerprint('Баку и Москва: переговоры'):016x}" == PINNED_CYRILLIC


def test_distance_counts_differing_bits() -> None:
    assert distance(0, 0) == 0
    assert distance(0b1011, 0b0001) == 2
    assert distance(0, (1 << FINGERPRINT_BITS) - 1) == FINGERPRINT_BITS
