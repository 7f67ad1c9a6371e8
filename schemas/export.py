"""Export the JSON Schema documents: `python -m schemas.export [DIR]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from schemas import EVENT_TYPES

JSON_DIR = Path(__file__).parent / "json"


def render_all() -> dict[str, str]:
    """File name → document text for every event type."""
    return {
        f"{event_type.__name__}.json": json.dumps(
            event_type.model_json_schema(mode="serialization"),
            indent=2,
            ensure_ascii=False,
            sort_keys=True,
        )
        + "\n"
        for event_type in EVENT_TYPES
    }


def export(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else JSON_DIR
    for path in export(target):
        print(path)
