"""What a child's marker files mean when the parent collects a context's children."""

from __future__ import annotations

from pathlib import Path

from testmon_watch.core.keys import ContextKey
from testmon_watch.measure.children import ChildRecording
from testmon_watch.wire.child_report import ChildFiles, ChildReport, ChildState, encode_report

KEY = ContextKey.test("test_kids.py::test_a")


def test_only_a_child_that_was_running_and_never_reported_is_incomplete(tmp_path: Path) -> None:
    recording = ChildRecording(tmp_path, tmp_path / ".children")
    try:
        markers = {
            # killed between creating and writing its marker: it ran nothing
            101: "",
            # killed while multiprocessing was still starting it: it ran nothing
            102: str(ChildState.STARTING),
            # ran its target and never reported: its lines are lost
            103: str(ChildState.RUNNING),
            104: str(ChildState.RUNNING),
        }
        for pid, text in markers.items():
            (recording.dir / ChildFiles.of(KEY, pid).started).write_text(text)
        report = ChildReport(KEY, 104, {"work.py": {2, 3}}, set(), set())
        (recording.dir / ChildFiles.of(KEY, 104).report).write_text(encode_report(report))

        data = recording.collect(KEY)

        assert (data.complete, data.incomplete) == (1, 1)
        assert data.lines == {"work.py": {2, 3}}
    finally:
        recording.cleanup()


def test_a_report_of_another_version_counts_as_incomplete(tmp_path: Path) -> None:
    recording = ChildRecording(tmp_path, tmp_path / ".children")
    try:
        files = ChildFiles.of(KEY, 105)
        (recording.dir / files.started).write_text(str(ChildState.RUNNING))
        (recording.dir / files.report).write_text('{"version": 999, "key": "session"}')

        data = recording.collect(KEY)

        assert (data.complete, data.incomplete) == (0, 1)
    finally:
        recording.cleanup()


def test_leftover_keys_name_every_context_with_children_at_the_end(tmp_path: Path) -> None:
    from testmon_watch.measure.children import write_key

    recording = ChildRecording(tmp_path, tmp_path / ".children")
    try:
        fixture = ContextKey.fixture("session", "", "conftest.py", "pool", 1)
        for key, pid in ((KEY, 201), (fixture, 202)):
            write_key(recording.dir, key)
            (recording.dir / ChildFiles.of(key, pid).started).write_text(str(ChildState.RUNNING))
        report = ChildReport(fixture, 202, {"pool.py": {7}}, {"data.json"}, set())
        (recording.dir / ChildFiles.of(fixture, 202).report).write_text(encode_report(report))

        leftover = recording.leftover_keys()

        assert set(leftover) == {KEY, fixture}
        assert (leftover[KEY].complete, leftover[KEY].incomplete) == (0, 1)
        assert leftover[fixture].lines == {"pool.py": {7}}
        assert leftover[fixture].reads == {"data.json"}
    finally:
        recording.cleanup()


def test_an_unchanged_empty_folder_is_not_listed_again(tmp_path: Path) -> None:
    recording = ChildRecording(tmp_path, tmp_path / ".children")
    try:
        assert recording.collect(KEY).complete == 0  # empty: remembered with its mtime
        files = ChildFiles.of(KEY, 301)
        (recording.dir / files.started).write_text(str(ChildState.RUNNING))
        report = ChildReport(KEY, 301, {"work.py": {4}}, set(), set())
        (recording.dir / files.report).write_text(encode_report(report))

        assert recording.collect(KEY).lines == {"work.py": {4}}  # the mtime moved: listed
    finally:
        recording.cleanup()


def test_a_child_within_the_same_clock_tick_is_taken_at_the_end(tmp_path: Path) -> None:
    import os

    from testmon_watch.measure.children import write_key

    recording = ChildRecording(tmp_path, tmp_path / ".children")
    try:
        empty_at = os.stat(recording.dir).st_mtime_ns
        assert recording.collect(KEY).complete == 0
        write_key(recording.dir, KEY)
        files = ChildFiles.of(KEY, 302)
        (recording.dir / files.started).write_text(str(ChildState.RUNNING))
        report = ChildReport(KEY, 302, {"work.py": {5}}, set(), set())
        (recording.dir / files.report).write_text(encode_report(report))
        # A coarse clock gives the folder the mtime of the empty look.
        os.utime(recording.dir, ns=(empty_at, empty_at))

        assert recording.collect(KEY).complete == 0  # not seen after the test...
        leftover = recording.leftover_keys()  # ...but at the session's end, for certain
        assert leftover[KEY].lines == {"work.py": {5}}
        assert (leftover[KEY].complete, leftover[KEY].incomplete) == (1, 0)
    finally:
        recording.cleanup()
