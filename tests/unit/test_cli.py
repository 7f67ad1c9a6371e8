"""The command line as a user meets it: the commands, their options and variables, their exits.

Every list here is derived from the click group, so a new command or option is
checked without anyone remembering to add it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.cli.options import SettingOption, settings_from
from monitor.tagging.rules import BUNDLED_RULES

ROOT = Path(__file__).resolve().parents[2]
DEV_CORPUS = ROOT / "tests" / "data" / "dev.jsonl"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Read by the build (Makefile, Dockerfile, setup.py), not by the command line.
BUILD_VARIABLES = {"MONITOR_REQUIRE_COMPILED"}
SUBSCRIBER_COMMANDS = ["alerts", "digest"]
GROUP_ONLY = ["--partitions", "--app-id", "--rebalance-timeout"]


def commands(group: click.Group = main, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command under `group`: ("alerts",), ("feeds", "check"), …"""
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def options(path: tuple[str, ...]) -> list[click.Option]:
    return [
        param
        for param in command_at(path).params
        if isinstance(param, click.Option) and param.name != "help"
    ]


def help_text(*path: str) -> str:
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


COMMANDS = list(commands())


def listed_commands(*group: str) -> set[str]:
    """The command names `monitor [GROUP] --help` lists."""
    section = help_text(*group).split("Commands:")[1]
    return {line.split()[0] for line in section.splitlines() if line.strip()}


def test_the_help_lists_every_command() -> None:
    assert len(COMMANDS) >= 17
    for path in COMMANDS:
        assert path[-1] in listed_commands(*path[:-1]), f"{' '.join(path)} is not listed"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_has_an_environment_variable_shown_in_help(path: tuple[str, ...]) -> None:
    shown = help_text(*path)
    for option in options(path):
        assert isinstance(option.envvar, str), f"{path} {option.opts} has no envvar"
        assert option.envvar.startswith("MONITOR_")
        if not option.hidden:
            assert option.envvar in shown, f"{option.envvar} not shown in {path} --help"


@pytest.mark.parametrize("command", SUBSCRIBER_COMMANDS)
def test_a_subscriber_is_not_offered_the_workers_group_options(command: str) -> None:
    shown = help_text(command)

    assert "--bootstrap" in shown
    for flag in GROUP_ONLY:
        assert flag not in shown, f"monitor {command} --help offers {flag}"


def test_an_old_command_line_with_a_workers_option_still_parses() -> None:
    context = main.commands["alerts"].make_context(
        "alerts", ["--partitions", "3", "--app-id", "old", "--rebalance-timeout", "30"]
    )

    assert settings_from(context).app_id == "old"


def test_the_worker_is_offered_what_a_consumer_group_needs() -> None:
    shown = help_text("worker")

    for flag in GROUP_ONLY:
        assert flag in shown


def test_settings_are_built_from_the_options_a_command_was_given() -> None:
    context = main.commands["worker"].make_context(
        "worker", ["--bootstrap", "kafka:9092", "--partitions", "6", "--rebalance-timeout", "30"]
    )

    settings = settings_from(context)

    assert settings.bootstrap == "kafka:9092"
    assert settings.partitions == 6
    assert settings.rebalance_timeout_s == 30.0


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_each_settings_option_names_a_field_of_settings(path: tuple[str, ...]) -> None:
    context = command_at(path).make_context(path[-1], [], resilient_parsing=True)
    fields = set(vars(settings_from(context)))
    for option in options(path):
        if isinstance(option, SettingOption):
            assert option.setting in fields, f"{path} {option.opts}: no Settings.{option.setting}"


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


# -- broken rules ------------------------------------------------------------------------

RULES_COMMANDS = [
    path for path in COMMANDS if any(option.name == "rules_dir" for option in options(path))
]


@pytest.fixture(scope="module")
def broken_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rules = tmp_path_factory.mktemp("broken") / "rules"
    shutil.copytree(BUNDLED_RULES, rules)
    broken = rules / "signals" / "detentions.toml"
    broken.write_text(broken.read_text(encoding="utf-8") + "\n[[trigger]\n", encoding="utf-8")
    return rules


def arguments_for(path: tuple[str, ...]) -> list[str]:
    """What the command's arguments need to get as far as reading the rules."""
    values = []
    for param in command_at(path).params:
        if isinstance(param, click.Argument):
            values.append(str(DEV_CORPUS) if isinstance(param.type, click.Path) else "Baku")
    if any(option.name == "bootstrap" for option in options(path)):
        values += ["--bootstrap", "127.0.0.1:1"]  # nothing listens there: no broker is touched
    return values


def test_the_rules_commands_are_found() -> None:
    found = {path[-1] for path in RULES_COMMANDS}
    assert {"tag", "evaluate", "worker", "run", "backtest", "replay"} <= found


@pytest.mark.parametrize("path", RULES_COMMANDS, ids=" ".join)
def test_broken_rules_exit_with_status_2_and_the_reason_from_every_command(
    path: tuple[str, ...], broken_rules: Path
) -> None:
    result = CliRunner().invoke(main, [*path, *arguments_for(path), "--rules", str(broken_rules)])

    assert result.exit_code == 2, result.output
    assert "broken rules:" in result.stderr
    assert "detentions.toml:" in result.stderr
    assert "Traceback" not in result.output


# -- what a command imports --------------------------------------------------------------


def imported_after(*args: str) -> tuple[int, set[str]]:
    """Run `monitor ARGS…` in a fresh interpreter; its exit status and top-level modules."""
    program = (
        "import sys\n"
        "from monitor.cli import main\n"
        "status = None\n"
        "try:\n"
        f"    main({list(args)!r})\n"
        "except SystemExit as end:\n"
        "    status = end.code\n"
        "print(status, *sorted({name.partition('.')[0] for name in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True
    )
    status, *modules = done.stdout.splitlines()[-1].split()
    return int(status), set(modules)


def test_checking_the_feeds_does_not_load_the_stream_processors(tmp_path: Path) -> None:
    catalogue = tmp_path / "feeds.toml"
    # Loopback is refused without --allow-network: the probe fails at once, offline.
    catalogue.write_text('[[feeds]]\nurl = "http://127.0.0.1:9/rss"\n', encoding="utf-8")

    status, modules = imported_after("feeds", "check", "--feeds", str(catalogue))

    assert status == 2, "the probe should have failed"
    assert "faust" not in modules
    assert "mode" not in modules


def test_a_backtest_does_not_load_the_stream_processors() -> None:
    status, modules = imported_after("backtest", str(DEV_CORPUS))

    assert status == 0
    assert "faust" not in modules


def test_digest_weighs_stories_with_the_scoring_file_it_is_given(tmp_path: Path) -> None:
    scoring = tmp_path / "scoring.toml"
    scoring.write_text("[weights]\n", encoding="utf-8")

    result = CliRunner().invoke(
        main, ["digest", "--once", "--scoring", str(scoring), "--bootstrap", "127.0.0.1:1"]
    )

    assert result.exit_code == 1, result.output
    assert f"{scoring}:" in result.stderr, "digest did not read the file --scoring names"


# -- every variable: read, and documented ------------------------------------------------


def every_variable() -> dict[str, list[str]]:
    """Each MONITOR_ variable an option reads → the commands whose options read it."""
    found: dict[str, list[str]] = {}
    for path in [(), *COMMANDS]:
        for option in options(path):
            assert isinstance(option.envvar, str)
            found.setdefault(option.envvar, []).append(" ".join(path) or "monitor")
    return found


def sample(option: click.Option, tmp_path: Path) -> tuple[str, Any]:
    """A value for the option's variable that is not its default, and what it parses to."""
    kind = option.type
    if option.is_flag:
        return "true", True
    if option.multiple:
        return "10.0.0.0/8 192.168.0.0/16", ("10.0.0.0/8", "192.168.0.0/16")
    if isinstance(kind, click.Choice):
        choice = str([c for c in kind.choices if c != option.default][-1])
        return choice, choice
    if isinstance(kind, click.DateTime):
        return "2024-12-30", datetime(2024, 12, 30)
    if isinstance(kind, click.Path):
        if not kind.exists:
            return str(tmp_path / "made-up"), tmp_path / "made-up"
        existing = BUNDLED_RULES if not kind.file_okay else DEV_CORPUS
        return str(existing), existing
    if isinstance(kind, click.IntRange | click.FloatRange) or kind in (click.INT, click.FLOAT):
        low = getattr(kind, "min", None) or 0
        number = next(n for n in (low + 1, low + 2) if n != option.default)
        number = int(number) if isinstance(kind, click.IntRange) or kind is click.INT else number
        return str(number), number
    return "from-the-environment", "from-the-environment"


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda path: " ".join(path) or "monitor")
def test_every_variable_sets_its_option_and_the_settings(
    path: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected: dict[str, Any] = {}
    for option in options(path):
        raw, value = sample(option, tmp_path)
        assert value != option.default, f"{path} {option.opts}: the sample proves nothing"
        assert isinstance(option.envvar, str)
        assert option.name
        monkeypatch.setenv(option.envvar, raw)
        expected[option.name] = value
    command = command_at(path)
    arguments = [a for a in arguments_for(path) if a not in ("--bootstrap", "127.0.0.1:1")]
    arguments = arguments if path else ["topics"]  # the group wants a command after its own

    context = command.make_context(path[-1] if path else "monitor", arguments)

    for name, value in expected.items():
        assert context.params[name] == value, f"{path}: {name} did not come from its variable"
    settings = vars(settings_from(context))
    for option in options(path):
        if isinstance(option, SettingOption):
            assert settings[option.setting] == expected[option.name or ""]


def named_in(*documents: Path) -> set[str]:
    """The MONITOR_ variables the documents name (not a prefix such as MONITOR_WEBHOOK_…)."""
    text = "\n".join(document.read_text(encoding="utf-8") for document in documents)
    return {name for name in re.findall(r"\bMONITOR_[A-Z0-9_]*[A-Z0-9]\b", text)}


def test_every_variable_the_command_line_reads_is_documented() -> None:
    missing = sorted(set(every_variable()) - named_in(*DOCUMENTS))

    assert not missing, f"README.md and docs/ do not mention {missing}"


def test_every_variable_the_documents_name_is_read_by_an_option() -> None:
    named = named_in(*DOCUMENTS, ROOT / "docker-compose.yml")

    unknown = sorted(named - set(every_variable()) - BUILD_VARIABLES)

    assert not unknown, f"the documents name {unknown}, which no option reads"
