"""ChangeWatcher on a real tree with a real watchdog observer: one batch per save or burst.

Every test waits on queues the watcher's callbacks feed (see conftest.py); none
sleeps to wait for events. "Nothing happened" is shown by a later sentinel change
arriving alone in the next batch.
"""

from __future__ import annotations

import errno
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from testmon_watch.watch import ChangeBatch, ChangeWatcher, PathFilter
from testmon_watch.watch.observer import _Raw, _Window

from .conftest import SENTINEL, TIMEOUT, Watching

Start = Callable[..., Watching]

# watchdog's inotify backend warns about its own bookkeeping when a watched
# directory gains subdirectories quickly; that is not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


# -- one save, one batch ------------------------------------------------------------------------


def test_plain_save_is_one_batch(watch: Start, poll: bool) -> None:
    w = watch(poll=poll)
    before = time.monotonic()
    w.write("app.py", "def f():\n    return 2\n")
    batch = w.next_batch()
    assert batch.paths == {"app.py"}
    assert before <= batch.first_event_at <= batch.last_event_at
    w.assert_no_batch_before_sentinel()


def test_vim_save_sequence_is_one_batch(watch: Start, poll: bool) -> None:
    """vim with backupcopy=no: test file 4913, original renamed to a backup, new file written."""
    w = watch(poll=poll)
    root = w.root
    w.write("pkg/4913", "")
    os.unlink(root / "pkg/4913")
    os.rename(root / "pkg/mod.py", root / "pkg/mod.py~")
    w.write("pkg/mod.py", "LIMIT = 11\n")
    os.unlink(root / "pkg/mod.py~")
    assert w.next_paths() == {"pkg/mod.py"}
    w.assert_no_batch_before_sentinel()


def test_write_temp_then_rename_over_target_is_one_batch(watch: Start, poll: bool) -> None:
    w = watch(poll=poll)
    w.write("app.py.tmp", "def f():\n    return 3\n")
    os.replace(w.root / "app.py.tmp", w.root / "app.py")
    assert w.next_paths() == {"app.py"}
    w.assert_no_batch_before_sentinel()


def test_atomic_rename_from_an_unignored_temp_name_reports_only_the_target(watch: Start) -> None:
    """git checkout and some editors use temp names no ignore list knows; digests sort it out."""
    w = watch()
    w.write("pkg/tmpq8x1zz", "LIMIT = 12\n")
    os.replace(w.root / "pkg/tmpq8x1zz", w.root / "pkg/mod.py")
    assert w.next_paths() == {"pkg/mod.py"}
    w.assert_no_batch_before_sentinel()


def test_backup_then_write_in_place_is_one_batch(watch: Start) -> None:
    w = watch()
    shutil.copy2(w.root / "app.py", w.root / "app.py.bak")
    shutil.copy2(w.root / "app.py", w.root / "app.py~")
    w.write("app.py", "def f():\n    return 4\n")
    os.unlink(w.root / "app.py~")
    assert w.next_paths() == {"app.py"}
    w.assert_no_batch_before_sentinel()


def test_a_python_file_is_named_once_written_whole_before_its_batch(
    watch: Start, poll: bool
) -> None:
    # The standby parses it while the save settles (Session -> WorkerClient.prepare).
    writing: queue.Queue[str] = queue.Queue()
    w = watch(poll=poll, on_writing=writing.put)
    w.write("pkg/mod.py", "LIMIT = 13\n")
    w.write("pkg/mod.py", "LIMIT = 14\n")  # the same save, written twice: named once
    w.write("notes.txt", "not Python\n")
    assert w.next_paths() == {"pkg/mod.py", "notes.txt"}
    assert writing.get_nowait() == "pkg/mod.py"  # already there when the batch came
    w.assert_no_batch_before_sentinel()
    assert writing.empty()


# -- bursts ---------------------------------------------------------------------------------


def test_a_thousand_files_written_in_a_loop_arrive_together(watch: Start, poll: bool) -> None:
    """The union of the batches before the sentinel is exactly the 1,000 files, none twice.

    That much is deterministic. Natively the loop is also at most two batches: the
    debounce is long (a split needs the writing loop to stall for 0.5 s) and the cap
    far away. A polling observer reports whatever each poll saw, so on a loaded
    machine the loop can straddle several polls; the count is not asserted there.
    """
    w = watch(poll=poll, debounce=0.5, max_wait=10.0)
    expected = {f"bulk/f{i:04d}.py" for i in range(1000)}
    for rel in sorted(expected):
        (w.root / rel).write_text(f"X = {rel!r}\n")
    seen: list[frozenset[str]] = []
    while set().union(*seen) != expected:
        batch = w.next_batch()
        assert batch.paths <= expected, batch.paths - expected
        seen.append(batch.paths)
    assert sum(len(paths) for paths in seen) == len(expected)
    if not poll:
        assert len(seen) <= 2
    w.assert_no_batch_before_sentinel()


def test_a_continuous_stream_still_yields_batches(watch: Start) -> None:
    """max_wait caps the debounce: a batch arrives while the writer has not paused once.

    The writer writes every few milliseconds, far below the 0.5 s debounce, and
    stops only after the first batch arrived.
    """
    w = watch(debounce=0.5, max_wait=0.2)
    stop = threading.Event()

    def stream() -> None:
        n = 0
        while not stop.is_set() and n < 5000:
            (w.root / "data/stream.txt").write_text(str(n))
            n += 1
            stop.wait(0.005)

    writer = threading.Thread(target=stream)
    writer.start()
    try:
        batch = w.next_batch()
        still_writing = writer.is_alive()
    finally:
        stop.set()
        writer.join()
    assert batch.paths == {"data/stream.txt"}
    assert still_writing


def test_new_nested_directories_report_their_files(watch: Start, poll: bool) -> None:
    w = watch(poll=poll)
    for rel in ("gen/a/b/one.py", "gen/a/b/two.py", "gen/a/three.py"):
        w.write(rel, "X = 1\n")
    seen: set[str] = set()
    while seen != {"gen/a/b/one.py", "gen/a/b/two.py", "gen/a/three.py"}:
        seen |= w.next_paths()
    w.assert_no_batch_before_sentinel()


# -- no content change, no batch ------------------------------------------------------------


def test_touch_without_content_change_yields_nothing(watch: Start, poll: bool) -> None:
    w = watch(poll=poll)
    (w.root / "app.py").touch()
    os.utime(w.root / "pkg/mod.py", (1, 1))
    w.write("data/fixture.json", '{"a": 1}\n')  # the same bytes, saved again
    w.assert_no_batch_before_sentinel()


def test_content_changed_back_within_the_window_yields_nothing(watch: Start) -> None:
    w = watch()
    original = (w.root / "app.py").read_text()
    w.write("app.py", "def f():\n    return 99\n")
    w.write("app.py", original)
    w.assert_no_batch_before_sentinel()


def test_deleted_and_recreated_with_the_same_content_yields_nothing(watch: Start) -> None:
    w = watch()
    original = (w.root / "pkg/mod.py").read_text()
    os.unlink(w.root / "pkg/mod.py")
    w.write("pkg/mod.py", original)
    w.assert_no_batch_before_sentinel()


# -- deletions and directory moves ----------------------------------------------------------


def test_deleted_file_is_reported(watch: Start, poll: bool) -> None:
    w = watch(poll=poll)
    os.unlink(w.root / "data/fixture.json")
    assert w.next_paths() == {"data/fixture.json"}


def test_deleted_directory_yields_its_files(watch: Start, poll: bool) -> None:
    w = watch(poll=poll)
    shutil.rmtree(w.root / "pkg")
    assert w.next_paths() == {"pkg/__init__.py", "pkg/mod.py"}


def test_moved_directory_yields_old_and_new_paths(watch: Start, poll: bool) -> None:
    w = watch(poll=poll)
    os.rename(w.root / "pkg", w.root / "lib")
    expected = {"pkg/__init__.py", "pkg/mod.py", "lib/__init__.py", "lib/mod.py"}
    seen: set[str] = set()
    while seen != expected:
        seen |= w.next_paths()
    w.assert_no_batch_before_sentinel()


def test_directory_moved_in_from_outside_yields_its_files(watch: Start, tmp_path: Path) -> None:
    w = watch()
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "m.py").write_text("M = 1\n")
    (outside / "n.py").write_text("N = 1\n")
    os.rename(outside, w.root / "moved_in")
    expected = {"moved_in/sub/m.py", "moved_in/n.py"}
    seen: set[str] = set()
    while not expected <= seen:  # one batch or several; next_paths fails when none comes
        seen |= w.next_paths()
    assert seen == expected  # and nothing else: not the folder, no path outside it


# -- ignored paths ------------------------------------------------------------------------------


def test_ignored_paths_yield_nothing(watch: Start, poll: bool) -> None:
    w = watch(poll=poll)
    w.write(".git/objects/x", "blob")
    w.write("pkg/__pycache__/mod.cpython-311.pyc", "bytecode")
    w.write(".testmondata", "db")
    w.write(".testmondata-wal", "wal")
    w.write(".coverage.1", "cov")
    w.write("myenv/pyvenv.cfg", "home = /usr\n")
    w.write("myenv/lib/site.py", "X = 1\n")
    w.write("build/lib/app.py", "copy\n")
    w.write("run.log", "log line\n")
    w.write("pkg/.mod.py.swp", "swap")
    w.write(".pytest_cache/v/cache/lastfailed", "{}")
    w.assert_no_batch_before_sentinel()


def test_include_pattern_overrides_ignore(watch: Start) -> None:
    w = watch(include=("build/gen/**",), ignore=("data/",))
    w.write("build/gen/schema.py", "S = 1\n")
    assert w.next_paths() == {"build/gen/schema.py"}
    w.write("build/other.py", "O = 1\n")  # build/ is still ignored outside the include
    w.write("data/fixture.json", "{}\n")  # ignored by the user's glob
    w.assert_no_batch_before_sentinel()


def test_gitignore_change_takes_effect(watch: Start) -> None:
    w = watch()
    w.write(".gitignore", "build/\n*.log\ngenerated/\n")
    assert w.next_paths() == {".gitignore"}
    w.write("generated/out.py", "X = 1\n")
    w.assert_no_batch_before_sentinel()


# -- pause, resume, ignore_writes ---------------------------------------------------------------


def test_pause_holds_changes_and_resume_delivers_one_batch(watch: Start) -> None:
    w = watch()
    delivered_while_paused: list[ChangeBatch] = []
    w.watcher.pause()
    w.write("app.py", "def f():\n    return 5\n")
    assert w.held.get(timeout=TIMEOUT) == {"app.py"}
    w.write("pkg/mod.py", "LIMIT = 13\n")
    assert w.held.get(timeout=TIMEOUT) == {"app.py", "pkg/mod.py"}
    while not w.batches.empty():
        delivered_while_paused.append(w.batches.get_nowait())
    w.watcher.resume()
    batch = w.next_batch()
    assert not delivered_while_paused
    assert batch.paths == {"app.py", "pkg/mod.py"}
    assert batch.first_event_at <= batch.last_event_at
    w.assert_no_batch_before_sentinel()


def test_change_undone_while_paused_is_not_delivered(watch: Start) -> None:
    w = watch()
    original = (w.root / "app.py").read_text()
    w.watcher.pause()
    w.write("app.py", "def f():\n    return 6\n")
    assert w.held.get(timeout=TIMEOUT) == {"app.py"}
    w.write("app.py", original)
    assert w.held.get(timeout=TIMEOUT) == {"app.py"}
    w.watcher.resume()
    w.assert_no_batch_before_sentinel()


def test_resume_without_changes_delivers_nothing(watch: Start) -> None:
    w = watch()
    w.watcher.pause()
    w.watcher.resume()
    w.assert_no_batch_before_sentinel()


def test_ignore_writes_drops_the_tests_own_writes(watch: Start) -> None:
    """The session pauses, tests write files, then ignore_writes(those) and resume."""
    w = watch()
    w.watcher.pause()
    w.write("data/fixture.json", '{"written": "by a test"}\n')
    w.write("data/new_output.txt", "created by a test\n")
    w.write("app.py", "def f():\n    return 7\n")  # an edit made during the run
    held: frozenset[str] = frozenset()
    while held != {"data/fixture.json", "data/new_output.txt", "app.py"}:
        held = w.held.get(timeout=TIMEOUT)
    w.watcher.ignore_writes(["data/fixture.json", "data/new_output.txt"])
    w.watcher.resume()
    assert w.next_paths() == {"app.py"}
    # someone else changing the file later is a change again
    w.write("data/fixture.json", '{"edited": "by hand"}\n')
    assert w.next_paths() == {"data/fixture.json"}


def test_ignore_writes_drops_events_still_on_their_way(watch: Start) -> None:
    w = watch()
    w.watcher.pause()
    w.write("data/out.bin", "x" * 100)
    # possibly before its events are even seen; absolute paths are accepted too
    w.watcher.ignore_writes([str(w.root / "data/out.bin")])
    w.watcher.resume()
    w.assert_no_batch_before_sentinel()


# -- robustness ---------------------------------------------------------------------------------


def _exhausted_inotify() -> BaseObserver:
    raise OSError(errno.ENOSPC, "inotify watch limit reached")


class _StartFails(Observer):  # type: ignore[misc,valid-type]  # Observer is a platform alias
    def start(self) -> None:
        raise OSError(errno.EMFILE, "Too many open files")


@pytest.mark.parametrize(
    ("factory", "reason"),
    [
        (_exhausted_inotify, "inotify watch limit reached"),
        (_StartFails, "inotify instance limit reached"),
    ],
)
def test_falls_back_to_polling_when_native_events_cannot_start(
    watch: Start, factory: Callable[[], BaseObserver], reason: str
) -> None:
    """The inotify limits cannot be exhausted from a test without harming the machine, so
    the native observer is replaced through the `observer_factory` injection point by
    one that fails the way an exhausted inotify does (OSError ENOSPC / EMFILE).
    """
    w = watch(observer_factory=factory)
    notice = w.notices.get(timeout=TIMEOUT)
    assert notice.startswith(f"native file events unavailable ({reason}")
    assert notice.endswith("; polling every 0.5 s")
    assert w.watcher.polling
    w.write("app.py", "def f():\n    return 8\n")
    assert w.next_paths() == {"app.py"}


def test_a_failing_callback_is_reported_and_watching_goes_on(project: Path) -> None:
    batches: queue.Queue[ChangeBatch] = queue.Queue()
    notices: queue.Queue[str] = queue.Queue()
    calls = 0

    def on_batch(batch: ChangeBatch) -> None:
        nonlocal calls
        calls += 1
        batches.put(batch)
        if calls == 1:
            raise RuntimeError("boom")

    watcher = ChangeWatcher(
        project, on_batch, PathFilter(project), debounce=0.2, on_notice=notices.put
    )
    watcher.start()
    try:
        (project / "app.py").write_text("def f():\n    return 9\n")
        assert batches.get(timeout=TIMEOUT).paths == {"app.py"}
        assert notices.get(timeout=TIMEOUT) == "change handler failed: RuntimeError: boom"
        (project / SENTINEL).write_text("after the failure\n")
        assert batches.get(timeout=TIMEOUT).paths == {SENTINEL}
    finally:
        watcher.stop()


def test_watched_count_follows_the_tree(watch: Start) -> None:
    w = watch()
    # app.py, pkg/__init__.py, pkg/mod.py, tests/test_app.py, data/fixture.json,
    # bulk/.keep, .gitignore
    assert w.watcher.watched_count == 7
    w.write("pkg/extra.py", "E = 1\n")
    w.write("build/ignored.py", "I = 1\n")
    assert w.next_paths() == {"pkg/extra.py"}
    assert w.watcher.watched_count == 8
    os.unlink(w.root / "app.py")
    assert w.next_paths() == {"app.py"}
    assert w.watcher.watched_count == 7


def test_snapshot_skips_ignored_trees(project: Path) -> None:
    (project / ".venv" / "lib").mkdir(parents=True)
    (project / ".venv" / "lib" / "big.py").write_text("X = 1\n")
    (project / "node_modules" / "m.js").parent.mkdir()
    (project / "node_modules" / "m.js").write_text("x")
    w = Watching(project)
    w.watcher.start()
    try:
        assert w.watcher.watched_count == 7
    finally:
        w.watcher.stop()


# -- a completed save is not held for the whole debounce -------------------------------------


def test_a_single_file_written_and_closed_is_delivered_before_the_debounce_ends(
    watch: Start,
) -> None:
    # The writer's close ends an editor save: a third of the debounce is enough. Were the
    # watcher to wait the full 6 s, nothing would arrive within the 4 s allowed here.
    w = watch(debounce=6.0, max_wait=30.0)
    w.write("app.py", "def f():\n    return 2\n")
    assert w.next_batch(timeout=4.0).paths == {"app.py"}


def test_only_a_single_closed_file_ends_the_quiet_period_early() -> None:
    window = _Window()
    window.add(_Raw("path", "app.py", 1.0))
    assert not window.written_and_closed()  # modified, not yet closed
    window.add(_Raw("path", "app.py", 1.001, closed=True))
    assert window.written_and_closed()
    window.add(_Raw("path", "app.py", 1.002))  # a chmod after the close: wait again
    assert not window.written_and_closed()
    window.add(_Raw("path", "app.py", 1.003, closed=True))
    window.add(_Raw("path", "other.py", 1.004, closed=True))  # a burst: always the full wait
    assert not window.written_and_closed()
    burst = _Window()
    burst.add(_Raw("dir", "pkg", 1.0))
    burst.add(_Raw("path", "pkg/a.py", 1.0, closed=True))
    assert not burst.written_and_closed()


def test_watchdogs_duplicate_callback_warning_is_silenced_and_nothing_else(
    tmp_path: Path,
) -> None:
    import warnings

    import watchdog.observers.inotify as inotify_module

    def warn(message: str) -> None:
        warnings.warn_explicit(
            message,
            RuntimeWarning,
            inotify_module.__file__,
            365,
            module="watchdog.observers.inotify",
        )

    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()  # as in a fresh process: only our filter matters
        watcher = ChangeWatcher(tmp_path, lambda batch: None, PathFilter(tmp_path))
        watcher.start()
        try:
            warn("Callback with id '1' already exists for watch <w>. It will be Overwritten.")
            warn("some other watchdog trouble")
        finally:
            watcher.stop()
    assert [str(w.message) for w in caught] == ["some other watchdog trouble"]


def test_a_python_file_being_written_is_named_when_its_writer_closes_it(watch: Start) -> None:
    # Named at its first write, the standby would parse a half-written file in vain.
    named: queue.Queue[tuple[str, str]] = queue.Queue()

    def on_writing(rel: str) -> None:
        named.put((rel, (w.root / rel).read_text()))

    w: Watching = watch(on_writing=on_writing)
    with open(w.root / "pkg" / "mod.py", "w") as half:
        half.write("LIMIT = ")
        half.flush()  # its modify event is queued before other.py's below
        w.write("other.py", "X = 1\n")  # written and closed: named
        assert named.get(timeout=TIMEOUT) == ("other.py", "X = 1\n")
        assert named.empty()  # mod.py was written, not closed: not named yet
        half.write("15\n")
    assert named.get(timeout=TIMEOUT) == ("pkg/mod.py", "LIMIT = 15\n")
    seen: set[str] = set()
    while seen != {"pkg/mod.py", "other.py"}:  # one batch, or two if the wait outlasted it
        seen |= w.next_paths()
