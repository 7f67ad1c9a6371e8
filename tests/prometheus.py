"""Prometheus' own tools for the tests: the server and promtool, from Debian's package.

They are not Python packages, so a developer's machine may lack them: the tests
that need them skip there, with the reason. CI installs the package
(`.ci/run`: apt-get install prometheus), so there a missing binary fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def prometheus_binary(name: str) -> str:
    """The path of `prometheus` or `promtool`; skips (fails in CI) when it is missing."""
    found = shutil.which(name)
    if found:
        return found
    reason = f"{name} is not installed (apt-get install prometheus); CI installs it"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)
