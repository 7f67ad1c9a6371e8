"""The real embedded broker, started once for the session on a free port."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from monitor.broker import EmbeddedBroker
from monitor.config import Settings
from monitor.demo import serve_directory
from monitor.topics import ensure_topics
from schemas.export import JSON_DIR
from tests.corpus import CASPIAN_WIRE


@pytest.fixture(scope="session")
async def broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker() as embedded:
        yield embedded


@pytest.fixture(scope="session")
async def settings(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    configured = replace(
        Settings(),
        data_dir=tmp_path_factory.mktemp("faust-data"),
        # The tests' feed servers listen on loopback, which collectors refuse unless allowed.
        allow_networks=("127.0.0.1/32",),
        bootstrap=broker.bootstrap,
        app_id="monitor-it",
        partitions=2,
        rebalance_timeout_s=4.0,
        session_timeout_s=6.0,
    )
    await ensure_topics(configured)
    return configured


@pytest.fixture(scope="session")
def schema_validator() -> Callable[[str, Any], None]:
    """Validate a decoded message against the exported document of its event type."""
    validators = {
        path.stem: jsonschema.Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))
        for path in Path(JSON_DIR).glob("*.json")
    }

    def validate(event_name: str, message: Any) -> None:
        validators[event_name].validate(message)

    return validate


@pytest.fixture(scope="module")
async def own_broker() -> AsyncIterator[str]:
    """A broker of the module's own, for tests that fill topics others also read."""
    async with EmbeddedBroker() as embedded:
        yield embedded.bootstrap


@pytest.fixture(scope="module")
async def catalogue(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Path]:
    """A catalogue of one sample feed served on loopback and one that is not there."""
    async with serve_directory(CASPIAN_WIRE.parent) as base_url:
        path = tmp_path_factory.mktemp("catalogue") / "feeds.toml"
        path.write_text(
            f'[[feeds]]\nurl = "{base_url}/{CASPIAN_WIRE.name}"\nname = "Caspian Wire"\n'
            f'lang = "en"\n\n[[feeds]]\nurl = "{base_url}/missing.xml"\nname = "Gone"\n',
            encoding="utf-8",
        )
        yield path


@pytest.fixture
async def own_broker_settings(tmp_path: Path) -> AsyncIterator[Settings]:
    """A broker of the test's own and one partition end to end: the order the
    escalator reads is the order items were published (see README, "Guarantees")."""
    async with EmbeddedBroker() as own:
        yield replace(
            Settings(),
            bootstrap=own.bootstrap,
            partitions=1,
            data_dir=tmp_path / "faust",
            rebalance_timeout_s=4.0,
        )
