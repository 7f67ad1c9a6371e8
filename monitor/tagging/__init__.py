"""Rule-based tagging: is an item about Azerbaijan–Russia relations, and with which signals.

rules = load_rules()                    # the bundled TOML rules, checked and compiled
result = tag(title, summary, rules)     # pure: relevance, sides, signals, evidence

`tag` runs `scan`, the compiled tagger (`monitor.tagging._core`, built from Cython when
the package is installed) where it was built, and the pure-Python one
(`monitor.tagging.matcher`, the readable definition of the same results)
where it was not: the same answers, three to four times slower. `COMPILED` says
which one this process runs.
"""

from monitor.tagging.background import set_aside
from monitor.tagging.matcher import detect_language, normalise_field
from monitor.tagging.result import TagResult
from monitor.tagging.rules import RuleFileError, Rules, load_rules

try:
    from monitor.tagging._core import tag as scan
except ImportError:  # installed without a compiler: see setup.py
    from monitor.tagging.matcher import tag as scan

    COMPILED = False
else:
    COMPILED = True


def tag(title: str, summary: str, rules: Rules, lang: str | None = None) -> TagResult:
    """Relevance, sides, signals and evidence of one item; pure, never raises on odd input.

    `scan` finds what the rules match; `set_aside` then tells the item's news
    from the background it recalls, one code path for both scanners.
    """
    return set_aside(scan(title, summary, rules, lang), title, summary, rules)


__all__ = [
    "COMPILED",
    "RuleFileError",
    "Rules",
    "TagResult",
    "detect_language",
    "load_rules",
    "normalise_field",
    "scan",
    "set_aside",
    "tag",
]
