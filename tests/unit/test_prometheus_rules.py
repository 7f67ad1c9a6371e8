"""The alerting rules in deploy/prometheus/rules: valid, unit-tested, and each one
something an operator can act on.

`promtool check rules` and `promtool test rules` (Debian's prometheus package)
judge the rules as Prometheus will; the rest holds them against what the
monitor exports and what docs/operators.md tells the operator to do.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import yaml

from tests.prometheus import RULE_TESTS, RULES, prometheus_binary
from tests.unit.test_compose import ROOT, exported_metric_names

OPERATORS_DOC = ROOT / "docs" / "operators.md"
SEVERITIES = {"critical", "warning"}


def alerting_rules() -> list[dict[str, Any]]:
    rules = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text("utf-8"))["groups"]:
            rules += [rule for rule in group["rules"] if "alert" in rule]
    return rules


def unit_tests() -> list[dict[str, Any]]:
    tests = []
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text("utf-8"))["tests"]:
            tests += test.get("alert_rule_test", [])
    return tests


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [prometheus_binary("promtool"), *args], capture_output=True, text=True, timeout=120
    )


def test_promtool_finds_the_rules_valid() -> None:
    checked = promtool("check", "rules", *map(str, RULES))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alerting_rules())} rules found" in checked.stdout


def test_the_rules_unit_tests_pass() -> None:
    tested = promtool("test", "rules", *map(str, RULE_TESTS))

    assert RULE_TESTS, "no unit tests in deploy/prometheus/tests"
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_unit_tested_both_firing_and_silent() -> None:
    firing = {t["alertname"] for t in unit_tests() if t.get("exp_alerts")}
    silent = {t["alertname"] for t in unit_tests() if not t.get("exp_alerts")}
    alerts = {rule["alert"] for rule in alerting_rules()}

    assert alerts, "no alerting rules"
    assert alerts <= firing, f"never shown firing: {sorted(alerts - firing)}"
    assert alerts <= silent, f"never shown silent: {sorted(alerts - silent)}"


def test_every_alert_has_a_severity_a_delay_a_summary_and_a_runbook_section() -> None:
    headings = {
        github_anchor(line.lstrip("#"))
        for line in OPERATORS_DOC.read_text("utf-8").splitlines()
        if line.startswith("#")
    }
    for rule in alerting_rules():
        name, annotations = rule["alert"], rule.get("annotations", {})

        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        assert "for" in rule, f"{name}: no `for`, it would fire on one evaluation"
        assert annotations.get("summary"), name
        assert annotations.get("description"), name
        document, _, anchor = annotations.get("runbook", "").partition("#")
        assert document == "docs/operators.md", f"{name}: runbook {annotations.get('runbook')}"
        assert anchor in headings, f"{name}: docs/operators.md has no section #{anchor}"


def test_every_metric_the_rules_read_is_one_the_monitor_exports() -> None:
    used = {
        re.sub(r"_(total|bucket|sum|count)$", "", name)
        for rule in alerting_rules()
        for name in re.findall(r"\b((?:monitor|faust)_[a-z_]+)", rule["expr"])
    }

    assert used <= exported_metric_names(), sorted(used - exported_metric_names())
    assert {"monitor_broker_up", "monitor_consumer_lag", "monitor_tension_level"} <= used
