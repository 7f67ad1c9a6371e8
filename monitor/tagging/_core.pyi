from monitor.tagging.result import TagResult
from monitor.tagging.rules import Rules

def tag(title: str, summary: str, rules: Rules, lang: str | None = None) -> TagResult: ...
