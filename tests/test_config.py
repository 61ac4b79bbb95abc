"""testmon_watch.config: `[tool.testmon-watch]` in pyproject.toml, defaults, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from testmon_watch.config import KEYS, ConfigError, OnChange, WatchConfig, load_watch_config


def write(root: Path, text: str) -> Path:
    (root / "pyproject.toml").write_text(text)
    return root


def test_defaults_without_pyproject(tmp_path: Path) -> None:
    assert load_watch_config(tmp_path) == WatchConfig([], [], 50, False)


def test_defaults_without_the_table(tmp_path: Path) -> None:
    write(tmp_path, '[project]\nname = "x"\n\n[tool.other]\nkey = 1\n')
    assert load_watch_config(tmp_path) == WatchConfig()


def test_all_keys(tmp_path: Path) -> None:
    write(
        tmp_path,
        "[tool.testmon-watch]\n"
        'include = ["build/gen/**"]\n'
        'ignore = ["docs/", "*.generated.py"]\n'
        "debounce-ms = 120\n"
        "poll = true\n"
        "timeout = 2.5\n"
        "run-on-start = false\n"
        'on-change = "restart"\n',
    )
    config = load_watch_config(tmp_path)
    assert config == WatchConfig(
        include=["build/gen/**"],
        ignore=["docs/", "*.generated.py"],
        debounce_ms=120,
        poll=True,
        timeout=2.5,
        run_on_start=False,
        on_change=OnChange.RESTART,
    )
    assert config.on_change is OnChange.RESTART


def test_every_key_has_a_field_and_a_default_of_its_kind() -> None:
    """Guards the table the TUI issue will extend."""
    defaults = WatchConfig()
    for spec in KEYS:
        assert getattr(defaults, spec.field) == spec.default, spec.key


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'debounce-ms = "fast"',
            "[tool.testmon-watch] debounce-ms must be an integer, got 'fast'",
        ),
        ("debounce-ms = true", "[tool.testmon-watch] debounce-ms must be an integer, got True"),
        ("debounce-ms = 1.5", "[tool.testmon-watch] debounce-ms must be an integer, got 1.5"),
        ("debounce-ms = -1", "[tool.testmon-watch] debounce-ms must be at least 0, got -1"),
        ('poll = "yes"', "[tool.testmon-watch] poll must be true or false, got 'yes'"),
        (
            'include = "src/**"',
            "[tool.testmon-watch] include must be a list of strings, got 'src/**'",
        ),
        ("ignore = [1, 2]", "[tool.testmon-watch] ignore must be a list of strings, got [1, 2]"),
        (
            'on-change = "later"',
            "[tool.testmon-watch] on-change must be 'queue' or 'restart', got 'later'",
        ),
        (
            "debounce = 10",
            "[tool.testmon-watch] unknown key 'debounce' "
            "(known keys: bell, debounce-ms, editor, ignore, include, keys, notifications, "
            "on-change, poll, run-on-start, theme, timeout)",
        ),
    ],
)
def test_errors_name_the_key_in_one_line(tmp_path: Path, body: str, message: str) -> None:
    write(tmp_path, f"[tool.testmon-watch]\n{body}\n")
    with pytest.raises(ConfigError) as info:
        load_watch_config(tmp_path)
    assert str(info.value) == message


def test_table_of_the_wrong_type(tmp_path: Path) -> None:
    write(tmp_path, '[tool]\ntestmon-watch = "on"\n')
    with pytest.raises(ConfigError, match=r"^\[tool.testmon-watch\] must be a table, got 'on'$"):
        load_watch_config(tmp_path)


def test_invalid_toml(tmp_path: Path) -> None:
    write(tmp_path, "[tool.testmon-watch\n")
    with pytest.raises(ConfigError, match="is not valid TOML") as info:
        load_watch_config(tmp_path)
    assert "\n" not in str(info.value)
