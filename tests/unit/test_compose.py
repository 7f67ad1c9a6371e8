"""docker-compose.yml and the Dockerfile, read the way `docker compose up` will use them.

No Docker engine is needed: the files are parsed and held against the CLI they
drive, so a renamed command, option or environment variable, or a broker whose
listeners do not match the address the services dial, fails here instead of in
a user's terminal.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import subprocess
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from monitor.cli import main
from monitor.config import DEFAULT_FEEDS, PACKAGE_DIR
from tests.prometheus import RULES, prometheus_binary

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

DEPENDENCY_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
KAFKA_IMAGE = re.compile(r"apache/kafka:(3\.9|4\.\d+)\.\d+")


# -- reading the files ---------------------------------------------------------


def load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict), "docker-compose.yml is not a mapping"
    return document


COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE.get("services") or {}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def last_instruction(name: str) -> str | None:
    found = [arguments for keyword, arguments in dockerfile_instructions() if keyword == name]
    return found[-1] if found else None


def exec_form(arguments: str) -> list[str]:
    """An ENTRYPOINT or CMD in exec form (a JSON list), or the test fails."""
    value = json.loads(arguments)
    assert isinstance(value, list), f"{arguments!r} is not in exec form"
    return [str(item) for item in value]


def image_entrypoint() -> list[str]:
    entrypoint = last_instruction("ENTRYPOINT")
    return exec_form(entrypoint) if entrypoint else []


def project_services() -> dict[str, dict[str, Any]]:
    """The services that run this project's image: built here, or tagged like one that is."""
    built_images = {spec.get("image") for spec in SERVICES.values() if "build" in spec}
    return {
        name: spec
        for name, spec in SERVICES.items()
        if "build" in spec or (spec.get("image") is not None and spec.get("image") in built_images)
    }


def kafka_service() -> tuple[str, dict[str, Any]]:
    brokers = [
        (name, spec)
        for name, spec in SERVICES.items()
        if str(spec.get("image", "")).startswith("apache/kafka:")
    ]
    assert len(brokers) == 1, f"expected one apache/kafka service, found {len(brokers)}"
    return brokers[0]


def environment(spec: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as the container sees it (list or mapping form)."""
    raw = spec.get("environment") or {}
    if isinstance(raw, list):
        pairs = [item.partition("=") for item in raw]
        raw = {name: value for name, _, value in pairs}
    values: dict[str, str] = {}
    for name, value in raw.items():
        if value is None:  # passed through from the host's environment: unknown here
            continue
        values[str(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    return values


def command_line(spec: Mapping[str, Any]) -> list[str]:
    """What the container runs: the service's entrypoint (or the image's) plus its command."""

    def as_list(value: Any) -> list[str]:
        if value is None:
            return []
        return shlex.split(value) if isinstance(value, str) else [str(item) for item in value]

    entrypoint = as_list(spec["entrypoint"]) if "entrypoint" in spec else image_entrypoint()
    command = as_list(spec.get("command"))
    if not command and "entrypoint" not in spec:
        command = exec_form(last_instruction("CMD") or "[]")
    return [*entrypoint, *command]


def dependencies(spec: Mapping[str, Any]) -> dict[str, str]:
    """depends_on as {service: condition}; the short (list) form means service_started."""
    raw = spec.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {
        name: (options or {}).get("condition", "service_started") for name, options in raw.items()
    }


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """'NAME://host:port,…' → {NAME: (host, port)}; an empty host means every interface."""
    found: dict[str, tuple[str, int]] = {}
    for entry in filter(None, (part.strip() for part in value.split(","))):
        name, _, address = entry.partition("://")
        host, _, port = address.rpartition(":")
        found[name] = (host, int(port))
    return found


def kafka_hostnames() -> set[str]:
    name, spec = kafka_service()
    return {name} | ({spec["hostname"]} if spec.get("hostname") else set())


def published_ports(spec: Mapping[str, Any]) -> dict[int, int]:
    """{host port: container port} from short ('[ip:]host:container') or long syntax."""
    ports: dict[int, int] = {}
    for entry in spec.get("ports") or []:
        if isinstance(entry, dict):
            ports[int(entry["published"])] = int(entry["target"])
        else:
            *_, host, container = str(entry).split("/")[0].split(":")
            ports[int(host)] = int(container)
    return ports


def cli_commands() -> Iterator[click.Command]:
    yield main
    yield from main.commands.values()


def cli_envvars() -> dict[str, str]:
    """Every environment variable a CLI option reads → the command and option reading it."""
    found: dict[str, str] = {}
    for command in cli_commands():
        for param in command.params:
            envvars = param.envvar
            if envvars is None:
                continue
            for envvar in [envvars] if isinstance(envvars, str) else envvars:
                found.setdefault(envvar, f"{command.name} {param.opts[0]}")
    return found


def parse_monitor(argv: Sequence[str]) -> click.Context:
    """Parse `monitor [group options] COMMAND [options]` as click would, running nothing.

    Options come from the arguments and from the MONITOR_* environment, so a
    bad value or an option the command lacks raises click's usage error.
    """
    assert argv[:1] == ["monitor"], f"the container runs {argv!r}, not monitor"
    arguments = list(argv[1:])
    positions = [index for index, word in enumerate(arguments) if word in main.commands]
    assert positions, f"no monitor command in {argv!r}; commands: {sorted(main.commands)}"
    at = positions[0]
    name = arguments[at]
    group = main.make_context("monitor", [*arguments[:at], name])
    return main.commands[name].make_context(name, arguments[at + 1 :], parent=group)


@pytest.fixture
def container_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No MONITOR_* variable from the developer's shell leaks into a parse."""
    for name in list(os.environ):
        if name.startswith("MONITOR_"):
            monkeypatch.delenv(name)
    return monkeypatch


def parse_service(name: str, monkeypatch: pytest.MonkeyPatch) -> click.Context:
    spec = project_services()[name]
    for variable, value in environment(spec).items():
        monkeypatch.setenv(variable, value)
    try:
        return parse_monitor(command_line(spec))
    except click.ClickException as error:
        pytest.fail(
            f"service {name!r}: `{shlex.join(command_line(spec))}`: {error.format_message()}"
        )


def subcommand(spec: Mapping[str, Any]) -> str | None:
    """The monitor command a service runs (`worker` in `monitor --log-level info worker`)."""
    return next((word for word in command_line(spec)[1:] if word in main.commands), None)


def services_running(command: str) -> list[str]:
    return [name for name, spec in project_services().items() if subcommand(spec) == command]


# -- the compose file ----------------------------------------------------------


def test_the_file_uses_the_compose_spec_without_a_version_key() -> None:
    assert "version" not in COMPOSE, "the Compose spec has no `version:`; compose warns about it"
    assert SERVICES, "no services"


def test_the_stack_runs_kafka_and_every_part_of_the_pipeline() -> None:
    kafka_service()
    running = {subcommand(spec) for spec in project_services().values()}
    assert {"topics", "worker", "collect", "alerts"} <= running


@pytest.mark.parametrize("service", sorted(project_services()))
def test_each_monitor_service_runs_a_command_the_cli_accepts(
    service: str, container_environment: pytest.MonkeyPatch
) -> None:
    context = parse_service(service, container_environment)

    assert context.command.name in main.commands


def test_every_monitor_variable_in_the_file_is_read_by_a_cli_option() -> None:
    known = cli_envvars()
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    used = set(re.findall(r"\bMONITOR_[A-Z0-9_]+\b", text))
    for spec in SERVICES.values():
        used |= {name for name in environment(spec) if name.startswith("MONITOR_")}

    unknown = sorted(used - set(known))

    assert not unknown, f"no CLI option reads {unknown}; the CLI reads {sorted(known)}"


@pytest.mark.parametrize("service", sorted(project_services()))
def test_monitor_services_dial_kafka_with_idempotent_producers(
    service: str, container_environment: pytest.MonkeyPatch
) -> None:
    context = parse_service(service, container_environment)

    assert context.params["idempotence"] is True
    assert context.params["rebalance_timeout"] >= 30, "production timeouts, not the demo's"
    assert context.params["session_timeout"] >= 10


@pytest.mark.parametrize("service", sorted(project_services()))
def test_the_bootstrap_address_is_kafkas_in_network_listener(
    service: str, container_environment: pytest.MonkeyPatch
) -> None:
    _, kafka = kafka_service()
    advertised = listeners(environment(kafka)["KAFKA_ADVERTISED_LISTENERS"])
    in_network = {
        f"{host}:{port}" for host, port in advertised.values() if host in kafka_hostnames()
    }
    context = parse_service(service, container_environment)

    servers = [server.strip() for server in str(context.params["bootstrap"]).split(",")]

    assert in_network, f"kafka advertises no listener under {kafka_hostnames()}: {advertised}"
    assert set(servers) <= in_network, f"{servers} is not among kafka's {sorted(in_network)}"


def test_depends_on_names_existing_services_with_valid_conditions() -> None:
    for name, spec in SERVICES.items():
        for target, condition in dependencies(spec).items():
            assert target in SERVICES, f"{name} depends on {target!r}, which is no service"
            assert condition in DEPENDENCY_CONDITIONS, f"{name} → {target}: {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                restart = str(SERVICES[target].get("restart", "no"))
                assert restart in {"no", "on-failure"}, f"{target} must end; restart: {restart}"


def test_topics_are_created_once_kafka_is_healthy_and_before_anything_else_starts() -> None:
    kafka_name, _ = kafka_service()
    (topics,) = services_running("topics")
    others = [name for name in project_services() if name != topics]

    assert dependencies(SERVICES[topics]) == {kafka_name: "service_healthy"}
    for name in others:
        assert dependencies(SERVICES[name]).get(topics) == "service_completed_successfully", name


def http_listeners(monkeypatch: pytest.MonkeyPatch) -> dict[str, click.Context]:
    """The services that serve HTTP (a web port, the dashboard), each parsed in its own
    environment: service → its parsed command line."""
    found = {}
    for name in project_services():
        with monkeypatch.context() as scoped:
            context = parse_service(name, scoped)
        if context.command.name == "dashboard" or context.params.get("web_port"):
            found[name] = context
    return found


def test_services_that_serve_http_listen_on_the_containers_interfaces_by_their_variable(
    container_environment: pytest.MonkeyPatch,
) -> None:
    listeners = http_listeners(container_environment)

    assert set(listeners) == {"worker", "collector", "dashboard"}
    for name, context in listeners.items():
        option = "host" if context.command.name == "dashboard" else "web_host"
        # The default, 127.0.0.1, would leave Prometheus and the published port outside.
        assert context.params[option] == "0.0.0.0", name
        assert context.get_parameter_source(option) is click.core.ParameterSource.ENVIRONMENT, (
            f"{name}: set by its MONITOR_ variable, like every other setting here"
        )


def test_the_workers_table_views_stay_off(container_environment: pytest.MonkeyPatch) -> None:
    for name in services_running("worker"):
        with container_environment.context() as scoped:
            assert parse_service(name, scoped).params["table_views"] is False, name


def test_the_long_running_services_come_back_after_a_crash() -> None:
    for command in ("worker", "collect", "alerts"):
        for name in services_running(command):
            assert SERVICES[name].get("restart") == "unless-stopped", name


def test_the_collector_polls_the_catalogue_that_ships_in_the_package(
    container_environment: pytest.MonkeyPatch,
) -> None:
    package_data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"
    ]["monitor"]
    shipped = {
        Path(path)
        for pattern in package_data
        for path in glob.glob(pattern, root_dir=PACKAGE_DIR, recursive=True)
    }

    assert DEFAULT_FEEDS.is_file(), (
        f"{DEFAULT_FEEDS.relative_to(ROOT)} is missing: `monitor collect` has no default catalogue"
    )
    assert DEFAULT_FEEDS.relative_to(PACKAGE_DIR) in shipped, "pip install . would leave it out"
    for name in services_running("collect"):
        assert parse_service(name, container_environment).params["feeds"] == DEFAULT_FEEDS


# -- the broker ----------------------------------------------------------------


def test_kafka_is_apache_kafka_pinned_to_a_kraft_release() -> None:
    _, kafka = kafka_service()

    assert KAFKA_IMAGE.fullmatch(kafka["image"]), f"pin 3.9.x or 4.x, not {kafka['image']}"


def test_kafka_runs_as_a_single_kraft_node_that_is_its_own_quorum() -> None:
    _, kafka = kafka_service()
    env = environment(kafka)
    own = listeners(env["KAFKA_LISTENERS"])
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    voter_id, _, voter_address = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    voter_host, _, voter_port = voter_address.rpartition(":")

    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert voter_id == env["KAFKA_NODE_ID"] == "1"
    assert voter_host in kafka_hostnames()
    assert int(voter_port) == own[controller][1], "the voter is this node's controller listener"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"


def test_every_kafka_listener_is_declared_and_has_a_security_protocol() -> None:
    _, kafka = kafka_service()
    env = environment(kafka)
    own = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        entry.split(":") for entry in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )

    assert set(advertised) <= set(own)
    assert set(own) <= set(protocols)
    assert env.get("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT") in own
    for name, (_, port) in advertised.items():
        assert own[name][1] == port, f"{name} is advertised on {port} but listens on {own[name]}"


def test_the_host_listener_is_published_on_the_port_it_advertises() -> None:
    _, kafka = kafka_service()
    env = environment(kafka)
    own = listeners(env["KAFKA_LISTENERS"])
    on_host = {
        name: port
        for name, (host, port) in listeners(env["KAFKA_ADVERTISED_LISTENERS"]).items()
        if host in {"localhost", "127.0.0.1"}
    }
    published = published_ports(kafka)

    assert on_host, "no listener for clients on the host"
    for name, port in on_host.items():
        assert published.get(port) == own[name][1], f"{name}: publish {port}:{own[name][1]}"


def test_topics_come_from_monitor_topics_not_from_auto_creation() -> None:
    _, kafka = kafka_service()

    assert environment(kafka).get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false"


def test_kafka_has_a_healthcheck_that_uses_the_images_own_scripts() -> None:
    _, kafka = kafka_service()
    check = kafka.get("healthcheck") or {}
    test = check.get("test")
    command = test if isinstance(test, str) else " ".join(str(word) for word in test or [])
    ports = {port for _, port in listeners(environment(kafka)["KAFKA_LISTENERS"]).values()}

    assert "/opt/kafka/bin/" in command, f"healthcheck: {command!r}"
    assert any(f":{port}" in command for port in ports), "it asks one of kafka's own listeners"
    assert not check.get("disable", False)


def test_kafka_keeps_its_data_on_a_named_volume_at_its_log_dir() -> None:
    _, kafka = kafka_service()
    log_dir = environment(kafka).get("KAFKA_LOG_DIRS")
    mounts = {}
    for entry in kafka.get("volumes") or []:
        if isinstance(entry, dict):
            mounts[entry["target"]] = entry.get("source")
        else:
            source, _, target = str(entry).partition(":")
            mounts[target.split(":")[0]] = source

    assert log_dir, "without KAFKA_LOG_DIRS the image keeps its data under /tmp"
    assert mounts.get(log_dir) in (COMPOSE.get("volumes") or {}), f"{log_dir}: {mounts}"


def test_every_named_volume_a_service_mounts_is_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    for name, spec in SERVICES.items():
        for entry in spec.get("volumes") or []:
            source = entry.get("source") if isinstance(entry, dict) else str(entry).split(":")[0]
            if source and not source.startswith((".", "/", "~", "$")):
                assert source in declared, f"{name} mounts undeclared volume {source!r}"


# -- the image -----------------------------------------------------------------


def test_the_image_runs_monitor_as_its_entry_point() -> None:
    entrypoint = image_entrypoint()
    default = exec_form(last_instruction("CMD") or "[]")

    assert [*entrypoint, *default][:1] == ["monitor"], f"ENTRYPOINT {entrypoint}, CMD {default}"


def test_the_image_is_python_311_slim() -> None:
    base = last_instruction("FROM") or ""

    assert base.split()[0].startswith("python:3.11-slim"), base


def test_the_image_installs_the_project_without_the_dev_extra() -> None:
    instructions = dockerfile_instructions()
    copied_to = {
        words[-1].rstrip("/") or "/"
        for keyword, arguments in instructions
        if keyword == "COPY" and (words := arguments.split()) and words[:-1] == ["."]
    }
    installs = [
        arguments
        for keyword, arguments in instructions
        if keyword == "RUN" and re.search(r"\bpip3? install\b", arguments)
    ]
    targets = {
        word.rstrip("/") or "."
        for command in installs
        for word in shlex.split(command.split("&&")[0])
        if not word.startswith("-") and word not in {"pip", "pip3", "install", "python", "-m"}
    }

    assert copied_to, "the Dockerfile never copies the build context"
    assert targets & (copied_to | {"."}), f"no `pip install` of the copied project: {installs}"
    assert not any("[dev" in command for command in installs), "the image needs no dev extra"


def test_the_image_runs_as_a_non_root_user() -> None:
    user = last_instruction("USER")

    assert user, "no USER: the container would run as root"
    assert user.split(":")[0] not in {"root", "0"}


# -- the build context (.dockerignore) ------------------------------------------


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception, regex) per line, in order, with Docker's wildcards."""
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        regex, index = "", 0
        while index < len(pattern):
            if pattern.startswith("**/", index):
                regex, index = regex + "(?:.*/)?", index + 3
            elif pattern.startswith("**", index):
                regex, index = regex + ".*", index + 2
            elif pattern[index] == "*":
                regex, index = regex + "[^/]*", index + 1
            elif pattern[index] == "?":
                regex, index = regex + "[^/]", index + 1
            elif pattern[index] == "[":
                end = pattern.index("]", index)
                regex, index = regex + pattern[index : end + 1], end + 1
            else:
                regex, index = regex + re.escape(pattern[index]), index + 1
        rules.append((exception, re.compile(regex)))
    return rules


def left_out_of_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: depth + 1]) for depth in range(len(parts))]
    excluded = False
    for exception, regex in dockerignore_rules():
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not exception
    return excluded


def test_the_build_context_holds_everything_pip_install_reads() -> None:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    readme = project["project"].get("readme")
    readme_file = readme.get("file") if isinstance(readme, dict) else readme
    packages = [
        pattern.rstrip("*.")
        for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    needed = ["pyproject.toml", *([readme_file] if readme_file else [])]
    for package in packages:
        needed += [
            path.relative_to(ROOT).as_posix()
            for path in (ROOT / package).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        ]

    missing = [path for path in needed if left_out_of_context(path)]

    assert not missing, f".dockerignore leaves out what the build needs: {missing}"


def test_the_build_context_leaves_out_local_environments_and_history() -> None:
    for path in (".venv/bin/python", ".git/config", ".mypy_cache/x", "monitor/__pycache__/x.pyc"):
        assert left_out_of_context(path), path


# -- Prometheus and Grafana (deploy/) ------------------------------------------

DEPLOY = ROOT / "deploy"


def scrape_targets() -> set[str]:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text("utf-8"))
    return {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }


def exported_metric_names() -> set[str]:
    """Every metric family the monitor exports: the domain's and Faust's sensor's."""
    from faust.sensors.prometheus import FaustMetrics

    from monitor.observe.metrics import FAUST_PREFIX, Metrics

    registry = Metrics().registry
    FaustMetrics.create(registry, FAUST_PREFIX)
    # monitor_consumer_lag is computed at scrape time from a running app's offsets.
    return {family.name for family in registry.collect()} | {"monitor_consumer_lag"}


def mounts(spec: Mapping[str, Any]) -> dict[str, str]:
    """{container path: source} of a service's short-syntax volumes."""
    found = {}
    for entry in spec.get("volumes") or []:
        source, target, *_ = str(entry).split(":")
        found[target] = source
    return found


def test_prometheus_scrapes_every_monitor_service_that_serves_metrics(
    container_environment: pytest.MonkeyPatch,
) -> None:
    serving = {
        f"{name}:{context.params['web_port']}"
        for name in project_services()
        if (context := parse_service(name, container_environment)).params.get("web_port")
    }

    assert {"worker:6066", "collector:6067"} <= serving
    assert serving == scrape_targets()


def test_prometheus_and_grafana_mount_the_provisioning_files_that_exist() -> None:
    prometheus, grafana = SERVICES["prometheus"], SERVICES["grafana"]

    for spec in (prometheus, grafana):
        for source in mounts(spec).values():
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    assert mounts(prometheus)["/etc/prometheus/prometheus.yml"].endswith("prometheus.yml")
    assert mounts(grafana)["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"


def host_path(spec: Mapping[str, Any], container_path: str) -> Path | None:
    """Where on the host a path inside the container comes from, through its bind mounts."""
    for target, source in mounts(spec).items():
        top = target.rstrip("/")
        if source.startswith("./") and (container_path + "/").startswith(top + "/"):
            return ROOT / source / container_path[len(top) :].lstrip("/")
    return None


def mounted_rule_files() -> list[Path]:
    """The rule files Prometheus in compose loads: its rule_files, through the mounts."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text("utf-8"))
    found = []
    for pattern in config.get("rule_files") or []:
        on_host = host_path(SERVICES["prometheus"], pattern)
        assert on_host is not None, f"rule_files: {pattern} is not mounted from the project"
        found += sorted(on_host.parent.glob(on_host.name))
    return found


def test_prometheus_loads_the_alerting_rules_the_tests_check() -> None:
    assert RULES, "no rule files in deploy/prometheus/rules"
    assert [path.resolve() for path in mounted_rule_files()] == [path.resolve() for path in RULES]


def test_promtool_accepts_the_compose_prometheus_config_with_its_mounted_rules(
    tmp_path: Path,
) -> None:
    promtool = prometheus_binary("promtool")
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text("utf-8"))
    # The same file with the container's paths put back to the project's.
    config["rule_files"] = [str(path) for path in mounted_rule_files()]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config), encoding="utf-8")

    checked = subprocess.run(
        [promtool, "check", "config", str(copy)], capture_output=True, text=True, timeout=60
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_grafana_reads_prometheus_and_loads_the_dashboard_from_where_it_is_mounted() -> None:
    datasources = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text("utf-8")
    )["datasources"]
    providers = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/monitor.yml").read_text("utf-8")
    )["providers"]
    published = published_ports(SERVICES["prometheus"])

    (source,) = datasources
    assert source["url"] == f"http://prometheus:{published[9090]}"
    (provider,) = providers
    assert mounts(SERVICES["grafana"])[provider["options"]["path"]] == "./deploy/grafana/dashboards"


def test_every_metric_the_grafana_dashboard_plots_is_one_the_monitor_exports() -> None:
    dashboard = json.loads((DEPLOY / "grafana/dashboards/monitor.json").read_text("utf-8"))
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {
        re.sub(r"_(total|bucket|sum|count)$", "", name)
        for expr in expressions
        for name in re.findall(r"\b((?:monitor|faust)_[a-z_]+)", expr)
    }
    datasource_uids = {
        t["datasource"]["uid"] for panel in dashboard["panels"] for t in panel["targets"]
    }

    assert used, "the dashboard plots nothing"
    assert used <= exported_metric_names(), sorted(used - exported_metric_names())
    assert datasource_uids == {"prometheus"}
    assert {
        "monitor_tension_index",
        "monitor_consumer_lag",
        "monitor_event_processing_seconds",
    } <= used
