"""The terminal app's own settings in `[tool.testmon-watch]`: keys, theme, editor, bell, toasts.

`keys` is a table of action name -> key (or comma-separated keys), e.g.
`[tool.testmon-watch.keys] run = "r,enter"`. Bad values raise `ConfigError` with
one line naming the key.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testmon_watch.config import FRONT_END_KEYS, TABLE, ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]


@dataclass(frozen=True)
class Action:
    """One command of the app: its name (for `keys`), default keys, action, description."""

    name: str
    keys: str
    action: str
    description: str
    show: bool = True


ACTIONS: tuple[Action, ...] = (
    Action("run", "r,enter", "run_affected", "Run affected"),
    Action("run_all", "a", "run_all", "Run all"),
    Action("run_failed", "f", "run_failed", "Run failed"),
    Action("run_test", "t,space", "run_test", "Run this test", show=False),
    Action("cancel", "x", "cancel", "Cancel", show=False),
    Action("filter", "slash", "filter_name", "Filter"),
    Action("filter_file", "p", "filter_file", "Filter by file", show=False),
    Action("pause", "w", "toggle_pause", "Pause/resume", show=False),
    Action("coverage", "v", "coverage", "Coverage"),
    Action("export", "c", "export_coverage", "Export .coverage", show=False),
    Action("open", "o", "open_editor", "Open in editor", show=False),
    Action("next_failure", "n", "next_failure", "Next failure", show=False),
    Action("previous_failure", "N", "previous_failure", "Previous failure", show=False),
    Action("history_back", "comma", "history(-1)", "Older run", show=False),
    Action("history_forward", "full_stop", "history(1)", "Newer run", show=False),
    Action("help", "question_mark", "help", "Help"),
    Action("quit", "q", "quit", "Quit"),
)
ACTION_NAMES = {a.name for a in ACTIONS}
UI_KEYS = FRONT_END_KEYS  # the keys of the table read here; the rest is testmon_watch.config


@dataclass(frozen=True)
class UiConfig:
    keys: dict[str, str] = field(default_factory=dict)  # action name -> keys
    theme: str | None = None
    editor: str | None = None  # command with {file} and {line}, e.g. "code -g {file}:{line}"
    bell: bool = False
    notifications: bool = True  # toasts; false: what they would say goes to the status bar

    def keys_for(self, action: Action) -> str:
        return self.keys.get(action.name, action.keys)


def parse_ui_table(table: Any) -> UiConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{TABLE} must be a table, got {table!r}")
    keys = table.get("keys", {})
    if not isinstance(keys, dict):
        raise ConfigError(f'{TABLE} keys must be a table of action = "key", got {keys!r}')
    for name, value in keys.items():
        if name not in ACTION_NAMES:
            known = ", ".join(sorted(ACTION_NAMES))
            raise ConfigError(f"{TABLE} keys: unknown action {name!r} (known: {known})")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f'{TABLE} keys.{name} must be a key name like "r", got {value!r}')
    for name in ("theme", "editor"):
        if name in table and not isinstance(table[name], str):
            raise ConfigError(f"{TABLE} {name} must be a string, got {table[name]!r}")
    for name in ("bell", "notifications"):
        if name in table and not isinstance(table[name], bool):
            raise ConfigError(f"{TABLE} {name} must be true or false, got {table[name]!r}")
    return UiConfig(
        keys={k: v.replace(" ", "") for k, v in keys.items()},
        theme=table.get("theme"),
        editor=table.get("editor"),
        bell=table.get("bell", False),
        notifications=table.get("notifications", True),
    )


def load_ui_config(root: Path) -> UiConfig:
    path = Path(root) / "pyproject.toml"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return UiConfig()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    table = document.get("tool", {}).get("testmon-watch", {})
    return parse_ui_table(table)
