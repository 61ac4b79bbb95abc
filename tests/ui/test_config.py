"""[tool.testmon-watch] keys, theme, editor, bell: parsed by the UI; errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from testmon_watch.config import ConfigError
from testmon_watch.ui.config import ACTIONS, load_ui_config, parse_ui_table
from testmon_watch.ui.editor import editor_command


def test_defaults_and_overrides(tmp_path: Path) -> None:
    assert load_ui_config(tmp_path).keys == {}
    (tmp_path / "pyproject.toml").write_text(
        '[tool.testmon-watch]\nbell = true\neditor = "ed {file}"\n'
        '[tool.testmon-watch.keys]\nrun_all = "A"\nquit = "ctrl+q, q"\n'
    )
    config = load_ui_config(tmp_path)
    assert config.bell and config.editor == "ed {file}"
    assert config.keys == {"run_all": "A", "quit": "ctrl+q,q"}
    by_name = {a.name: a for a in ACTIONS}
    assert config.keys_for(by_name["run_all"]) == "A"
    assert config.keys_for(by_name["run"]) == "r,enter"


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"keys": {"launch": "l"}}, "'launch'"),
        ({"keys": {"run": 3}}, "keys.run"),
        ({"keys": "r"}, "keys"),
        ({"bell": "yes"}, "bell"),
        ({"editor": ["vim"]}, "editor"),
    ],
)
def test_bad_values_name_the_key(table: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as info:
        parse_ui_table(table)
    assert "\n" not in str(info.value)


def test_editor_command(monkeypatch: pytest.MonkeyPatch) -> None:
    f = Path("/p/a.py")
    assert editor_command("code -g {file}:{line}", f, 3) == ["code", "-g", "/p/a.py:3"]
    monkeypatch.setenv("VISUAL", "")
    monkeypatch.setenv("EDITOR", "nvim")
    assert editor_command(None, f, 3) == ["nvim", "+3", "/p/a.py"]
    monkeypatch.setenv("EDITOR", "gedit")
    assert editor_command(None, f, 3) == ["gedit", "/p/a.py"]
