"""Rule-based tagging: is an item about Azerbaijan–Russia relations, and with which signals.

rules = load_rules()                    # the bundled TOML rules, checked and compiled
result = tag(title, summary, rules)     # pure: relevance, sides, signals, evidence

The algorithm is written once, in `matcher.py` (the scan) and `background.py`
(what an item recalls rather than reports). Where the package was installed
with a compiler, Cython built both from those very files (C types in the
`.pxd` files beside them), and the compiled modules are what imports find;
elsewhere the same files run as plain Python: the same answers, several times
slower. `COMPILED` says which one this process runs.
"""

from monitor.tagging import background, matcher
from monitor.tagging.matcher import scan, tag
from monitor.tagging.result import TagResult
from monitor.tagging.rules import RuleFileError, Rules, load_rules
from monitor.tagging.text import detect_language, normalise_field

COMPILED = matcher.COMPILED and background.COMPILED

__all__ = [
    "COMPILED",
    "RuleFileError",
    "Rules",
    "TagResult",
    "detect_language",
    "load_rules",
    "normalise_field",
    "scan",
    "tag",
]
