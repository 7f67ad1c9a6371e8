"""The feed catalogue: which feeds to poll, and what the monitor knows about each outlet.

A TOML file with one `[[feeds]]` table per feed:

    [[feeds]]
    url = "https://example.az/rss"
    name = "Example News"      # optional, defaults to the host
    lang = "az"                # optional: en, ru, de, az, tr
    country = "AZ"             # optional
    kind = "independent"       # optional: state, independent, international…
    stale_after_hours = 72     # optional: silence allowed before a FeedStale
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.collect.identity import normalise_url
from monitor.errors import MonitorError

ALLOWED_SCHEMES = frozenset({"http", "https"})
# The languages the tagger has rules and folding for; a feed's `lang` is one of them
# or unset (then the tagger detects the language of each item).
LANGUAGES = ("en", "ru", "de", "az", "tr")


class CatalogueError(MonitorError):
    """The feed catalogue cannot be used; the message names the file, the feed and why."""

    def __init__(self, path: Path, reason: str, index: int | None = None) -> None:
        self.path = path
        self.reason = reason
        # 1-based position among the [[feeds]] tables, as a person counts them in the file.
        self.index = index
        where = f"{path}" if index is None else f"{path}: feed #{index}"
        super().__init__(f"{where}: {reason}")


class FeedSpec(BaseModel):
    """One feed to poll, as the catalogue declares it."""

    # Unknown keys are refused so that a typo ("contry") is an error, not a silent None.
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    url: str
    # Filled from the URL's host when the catalogue gives none (see below).
    name: str = ""
    lang: str | None = None
    country: str | None = None
    kind: str | None = None
    # How long this outlet may publish nothing before it counts as stale; the
    # collector's --stale-after when not given (a weekly outlet needs more).
    stale_after_hours: float | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _name_defaults_to_host(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            return data
        name = data.get("name")
        if name is None or (isinstance(name, str) and not name.strip()):
            host = urlsplit(data["url"].strip()).hostname
            if host:
                return {**data, "name": host}
        return data

    @field_validator("url")
    @classmethod
    def _http_url_only(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ALLOWED_SCHEMES:
            raise ValueError(f"url must be http or https, not {parts.scheme or 'missing'!r}")
        if not parts.hostname:
            raise ValueError("url has no host")
        return url

    @field_validator("lang")
    @classmethod
    def _a_language_the_tagger_reads(cls, lang: str | None) -> str | None:
        if lang is None:
            return None
        if lang.lower() not in LANGUAGES:
            raise ValueError(
                f"lang must be one of {', '.join(LANGUAGES)} (the tagger's languages), not {lang!r}"
            )
        return lang.lower()

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, name: str) -> str:
        if not name:
            raise ValueError("name must not be blank")
        return name


def validation_reason(error: ValidationError) -> str:
    """A pydantic error as one line: each field with what is wrong with it."""
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'entry'}: {problem['msg']}"
        for problem in error.errors()
    )


def load_catalogue(path: Path) -> tuple[FeedSpec, ...]:
    """Read and validate the catalogue; raises CatalogueError on the first bad entry."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CatalogueError(path, f"cannot read: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise CatalogueError(path, f"not UTF-8: {error}") from error
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(path, f"not valid TOML: {error}") from error

    entries = document.get("feeds")
    if entries is None:
        raise CatalogueError(path, "no [[feeds]] tables")
    if not isinstance(entries, list):
        raise CatalogueError(path, "'feeds' must be an array of tables ([[feeds]])")

    feeds: list[FeedSpec] = []
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise CatalogueError(path, "must be a table", index)
        try:
            feed = FeedSpec.model_validate(entry)
        except ValidationError as error:
            raise CatalogueError(path, validation_reason(error), index) from None
        key = normalise_url(feed.url)
        if key in first_seen:
            raise CatalogueError(
                path, f"duplicate url {feed.url} (already feed #{first_seen[key]})", index
            )
        first_seen[key] = index
        feeds.append(feed)
    return tuple(feeds)
