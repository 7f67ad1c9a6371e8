"""Rule-based tagging: is an item about Azerbaijan–Russia relations, and with which signals.

rules = load_rules()                    # the bundled TOML rules, checked and compiled
result = tag(title, summary, rules)     # pure: relevance, sides, signals, evidence

`tag` is the compiled tagger (`monitor.tagging._core`, built from Cython when
the package is installed) where it was built, and the pure-Python one
(`monitor.tagging.matcher`, the readable definition of the same results)
where it was not: the same answers, three to four times slower. `COMPILED` says
which one this process runs.
"""

from monitor.tagging.matcher import TagResult, detect_language, normalise_field
from monitor.tagging.rules import RuleFileError, Rules, load_rules

try:
    from monitor.tagging._core import tag
except ImportError:  # installed without a compiler: see setup.py
    from monitor.tagging.matcher import tag

    COMPILED = False
else:
    COMPILED = True

__all__ = [
    "COMPILED",
    "RuleFileError",
    "Rules",
    "TagResult",
    "detect_language",
    "load_rules",
    "normalise_field",
    "tag",
]
