"""The text fingerprint: a 64-bit SimHash of an item's words, and the distance of two.

The tagger computes it for every relevant item (`ItemTagged.fingerprint`, in hex)
and the escalation compares fingerprints to group items into stories
(`monitor.escalation.stories`). Its value is persisted in the escalator's state
and sent on the wire, so it must never change for a given text: the function
below is fixed, and `tests/unit/test_fingerprint.py` pins values computed by
its first version.

SimHash is what near-duplicate detection of news copy has long used, and one
64-bit value per item keeps the escalator's table small (MinHash would need
64–128 values per item).
"""

from __future__ import annotations

import hashlib
import re

FINGERPRINT_BITS = 64
_WORD = re.compile(r"\w{2,}")
# Bit-sliced counting: every bit of a 64-bit hash gets an 8-bit lane of its own
# in one big integer, so adding the spread hashes counts, per bit, how many
# features set it. _LANES[k][v] is byte k of a hash, of value v, so spread.
_LANES = [
    [
        sum(((value >> bit) & 1) << (8 * (8 * position + bit)) for bit in range(8))
        for value in range(256)
    ]
    for position in range(8)
]
# Lanes are 8 bits wide: beyond 255 features a lane could overflow.
_MAX_FEATURES = 255
# _AT_LEAST[k] turns a lane's count into "1" when it is at least k, else "0":
# the counts, read as bytes, become the fingerprint's binary digits in one call.
_AT_LEAST = [bytes(48 + (count >= k) for count in range(256)) for k in range(_MAX_FEATURES + 2)]

# The spread hash of each word seen lately: news repeats its vocabulary, and a
# look-up costs a tenth of hashing the word again. Bounded by clearing it.
_SPREAD: dict[str, int] = {}
_SPREAD_LIMIT = 100_000


def _spread(word: str) -> int:
    d = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
    l0, l1, l2, l3, l4, l5, l6, l7 = _LANES
    return l0[d[0]] + l1[d[1]] + l2[d[2]] + l3[d[3]] + l4[d[4]] + l5[d[5]] + l6[d[6]] + l7[d[7]]


def fingerprint(text: str) -> int:
    """SimHash of the text's distinct words: similar texts, close fingerprints.

    Words alone, not word pairs: on headline-length text a changed word would
    otherwise move three features of some twenty, and a wire copy with one word
    edited would land as far away as a different report. A bit is set when more
    than half of the words' hashes (blake2b, 8 bytes) set it.
    """
    chosen = list(dict.fromkeys(_WORD.findall(text.casefold())))[:_MAX_FEATURES]
    if not chosen:
        return 0
    spread = _SPREAD
    if len(spread) > _SPREAD_LIMIT:
        spread.clear()
    lanes = 0
    for feature in chosen:
        value = spread.get(feature)
        if value is None:
            value = spread[feature] = _spread(feature)
        lanes += value
    # Bit b is set when its lane counts more than len(chosen) / 2 features.
    counts = lanes.to_bytes(FINGERPRINT_BITS, "little")
    return int(counts[::-1].translate(_AT_LEAST[len(chosen) // 2 + 1]), 2)


def distance(a: int, b: int) -> int:
    """Hamming distance of two fingerprints: 0 same text, about 32 unrelated."""
    return (a ^ b).bit_count()
