"""The child-report format: settings, context variable, file names, marker states, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testmon_watch.core.keys import SESSION, ContextKey
from testmon_watch.wire import child_report as wire
from testmon_watch.wire.child_report import (
    ChildFiles,
    ChildReport,
    ChildSettings,
    ChildState,
)

KEYS = [
    ContextKey.test("tests/test_a.py::test_x[a:b]"),
    ContextKey.import_of("pkg/mod.py"),
    ContextKey.collection("tests/test_a.py"),
    ContextKey.fixture("module", "tests/test_a.py", "tests", "db", 2),
    SESSION,
]


def test_settings_round_trip() -> None:
    settings = ChildSettings(Path("/work/project"), Path("/work/project/.testmondata-children/7"))
    assert wire.decode_settings(wire.encode_settings(settings)) == settings


def test_settings_of_another_version_are_refused_in_one_line() -> None:
    text = json.dumps({"version": wire.VERSION + 1, "root": "/a", "dir": "/b"})
    with pytest.raises(ValueError, match="version") as info:
        wire.decode_settings(text)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="version None"):
        wire.decode_settings(json.dumps({"root": "/a", "dir": "/b"}))  # the unversioned form


@pytest.mark.parametrize("key", KEYS, ids=str)
def test_context_round_trip(key: ContextKey) -> None:
    assert wire.decode_context(wire.encode_context(key)) == key


def test_a_context_that_is_no_key_is_refused() -> None:
    with pytest.raises(ValueError, match="not a context key"):
        wire.decode_context("nonsense")


@pytest.mark.parametrize("key", KEYS, ids=str)
def test_report_round_trip(key: ContextKey) -> None:
    report = ChildReport(key, 4242, {"a.py": {3, 1, 2}, "b/c.py": set()}, {"d.json"}, {"e"})
    assert wire.decode_report(wire.encode_report(report)) == report


def test_report_of_another_version_or_shape_is_refused() -> None:
    report = json.loads(wire.encode_report(ChildReport(SESSION, 1, {}, set(), set())))
    with pytest.raises(ValueError, match="version"):
        wire.decode_report(json.dumps({**report, "version": wire.VERSION + 1}))
    del report["lines"]
    with pytest.raises(ValueError, match="malformed"):
        wire.decode_report(json.dumps(report))
    with pytest.raises(ValueError, match="not a JSON object"):
        wire.decode_report("[1, 2]")


def test_marker_states() -> None:
    for state in ChildState:
        assert wire.decode_state(str(state)) is state
    assert wire.decode_state("") is None  # killed before it wrote its state
    assert wire.decode_state("garbage") is ChildState.RUNNING  # when in doubt, owed


def test_file_names_of_a_context_and_sorting_a_listing() -> None:
    key, other = KEYS[0], KEYS[1]
    done, running, lost = (ChildFiles.of(key, pid) for pid in (11, 12, 13))
    assert done.started.endswith(".started") and done.report.endswith(".json")
    assert wire.key_file_name(key) == wire.key_hash(key) + ".key"
    assert wire.key_hash(key) != wire.key_hash(other)
    assert wire.key_file_draft(key, "11-1") != wire.key_file_name(key)
    names = [
        done.started,
        done.report,
        running.started,
        lost.started,
        done.report_draft,
        wire.key_file_name(key),
        ChildFiles.of(other, 11).started,
        ChildFiles.of(other, 11).report,
    ]
    listing = wire.children_of(key, names)
    assert listing.reported == [done]
    assert listing.unreported == [running, lost]
