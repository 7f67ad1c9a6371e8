"""The command line: every option can also be set from the environment, and says so."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from monitor.cli import build_settings, main

COMMANDS = ["alerts", "broker", "collect", "demo", "evaluate", "run", "tag", "topics", "worker"]
COMMANDS += ["status", "deliver", "digest", "dashboard"]  # operators and subscribers


def test_the_entry_point_offers_every_role() -> None:
    assert set(COMMANDS) <= set(main.commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_an_environment_variable_shown_in_help(command: str) -> None:
    options = [
        param
        for param in main.commands[command].params
        if isinstance(param, click.Option) and param.name != "help"
    ]
    help_text = CliRunner().invoke(main, [command, "--help"], terminal_width=200).output
    for option in options:
        assert isinstance(option.envvar, str), f"{command} {option.opts} has no envvar"
        assert option.envvar.startswith("MONITOR_")
        assert option.envvar in help_text, f"{option.envvar} not shown in {command} --help"


def test_a_bad_feed_catalogue_named_in_the_environment_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue = tmp_path / "feeds.toml"
    catalogue.write_text('[[feeds]]\nurl = "ftp://example.org/rss"\n', encoding="utf-8")
    monkeypatch.setenv("MONITOR_FEEDS", str(catalogue))
    result = CliRunner().invoke(main, ["collect", "--once"])
    assert result.exit_code == 1
    assert f"{catalogue}: feed #1" in result.output
    assert "http or https" in result.output
    assert "Traceback" not in result.output


def test_settings_are_built_from_options_in_one_place() -> None:
    settings = build_settings(bootstrap="kafka:9092", partitions=6, rebalance_timeout=30.0)
    assert settings.bootstrap == "kafka:9092"
    assert settings.partitions == 6
    assert settings.rebalance_timeout_s == 30.0
