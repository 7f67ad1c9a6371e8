"""Rule-based tagging: is an item about Azerbaijan–Russia relations, and with which signals.

rules = load_rules()                    # the bundled TOML rules, checked and compiled
result = tag(title, summary, rules)     # pure: relevance, sides, signals, evidence
"""

from monitor.tagging.matcher import TagResult, detect_language, normalise_field, tag
from monitor.tagging.rules import RuleFileError, Rules, load_rules

__all__ = [
    "RuleFileError",
    "Rules",
    "TagResult",
    "detect_language",
    "load_rules",
    "normalise_field",
    "tag",
]
