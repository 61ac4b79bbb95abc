"""The app's configuration: `[tool.testmon-watch]` in the project's pyproject.toml, read, checked.

The watch loop's settings (what to watch, debounce, timeout, what a change
during a run does) are read here for every front end; the terminal app's own
keys (`FRONT_END_KEYS`: keys, theme, editor, bell, notifications) are read by
`testmon_watch.ui.config`, which uses `TABLE` and `ConfigError` from here.
Every key is declared once in `KEYS` (its TOML name, the `WatchConfig` field it
fills, its kind and default); adding a setting means adding a field and a row.
Bad configuration raises `ConfigError` with one line that names the key, so the
front end can print it as is.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

TABLE = "[tool.testmon-watch]"

Kind = Literal["bool", "int", "number", "str", "str-list"]

_KIND_NAMES: dict[Kind, str] = {
    "bool": "true or false",
    "int": "an integer",
    "number": "a number",
    "str": "a string",
    "str-list": "a list of strings",
}


class OnChange(str, Enum):
    """What a change seen during a run does (`on-change`, `--on-change`)."""

    QUEUE = "queue"  # the run finishes; the change runs right after it
    RESTART = "restart"  # the run is cancelled and a new one starts

    def __str__(self) -> str:
        return self.value


class ConfigError(ValueError):
    """`[tool.testmon-watch]` holds a key we do not know or a value of the wrong type."""


@dataclass(frozen=True)
class ConfigKey:
    """One setting: its TOML key, the `WatchConfig` field, its kind, default and minimum."""

    key: str
    field: str
    kind: Kind
    default: Any
    minimum: int | None = None


@dataclass(frozen=True)
class WatchConfig:
    """The watch settings after defaults are applied."""

    include: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    debounce_ms: int = 50
    poll: bool = False
    timeout: float | None = None  # seconds per test
    run_on_start: bool = True
    on_change: OnChange = OnChange.QUEUE


KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("include", "include", "str-list", []),
    ConfigKey("ignore", "ignore", "str-list", []),
    ConfigKey("debounce-ms", "debounce_ms", "int", 50, minimum=0),
    ConfigKey("poll", "poll", "bool", False),
    ConfigKey("timeout", "timeout", "number", None, minimum=0),
    ConfigKey("run-on-start", "run_on_start", "bool", True),
    ConfigKey("on-change", "on_change", "str", OnChange.QUEUE),
)

# Keys the terminal app reads itself (testmon_watch.ui.config validates them).
FRONT_END_KEYS = ("keys", "theme", "editor", "bell", "notifications")


def _check(spec: ConfigKey, value: Any) -> Any:
    """The value if it has the key's kind; ConfigError naming the key if not."""
    kind = spec.kind
    # bool is an int subclass: `debounce-ms = true` must not pass as 1
    ok = (
        (kind == "bool" and isinstance(value, bool))
        or (kind == "int" and isinstance(value, int) and not isinstance(value, bool))
        or (kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (kind == "str" and isinstance(value, str))
        or (
            kind == "str-list"
            and isinstance(value, list)
            and all(isinstance(item, str) for item in value)
        )
    )
    if not ok:
        raise ConfigError(f"{TABLE} {spec.key} must be {_KIND_NAMES[kind]}, got {value!r}")
    if spec.minimum is not None and value < spec.minimum:
        raise ConfigError(f"{TABLE} {spec.key} must be at least {spec.minimum}, got {value!r}")
    if spec.key == "on-change":
        if value not in {mode.value for mode in OnChange}:
            raise ConfigError(f"{TABLE} on-change must be 'queue' or 'restart', got {value!r}")
        return OnChange(value)
    return list(value) if kind == "str-list" else value


def parse_watch_table(table: Any) -> WatchConfig:
    """A `WatchConfig` from the already parsed `[tool.testmon-watch]` table."""
    if not isinstance(table, dict):
        raise ConfigError(f"{TABLE} must be a table, got {table!r}")
    by_key = {spec.key: spec for spec in KEYS}
    unknown = sorted(set(table) - set(by_key) - set(FRONT_END_KEYS))
    if unknown:
        known = ", ".join(sorted([*by_key, *FRONT_END_KEYS]))
        raise ConfigError(f"{TABLE} unknown key {unknown[0]!r} (known keys: {known})")
    values = {spec.field: _check(spec, table[spec.key]) for spec in KEYS if spec.key in table}
    return WatchConfig(**values)


def load_watch_config(root: Path) -> WatchConfig:
    """Settings from `root/pyproject.toml`; the defaults when the file or the table is absent."""
    path = Path(root) / "pyproject.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return WatchConfig()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    tool = document.get("tool", {})
    if not isinstance(tool, dict) or "testmon-watch" not in tool:
        return WatchConfig()
    return parse_watch_table(tool["testmon-watch"])
