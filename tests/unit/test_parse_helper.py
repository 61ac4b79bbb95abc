"""The parse helper: a real second interpreter parsing real files."""

from __future__ import annotations

import os
import select
import textwrap
import time
from pathlib import Path

import pytest

from testmon_watch.core.changes import read_state
from testmon_watch.core.db import FileRow
from testmon_watch.measure.parse_helper import ParseHelper

# Under pytest-xdist the test process runs execnet's threads; the forked child here
# only touches pipes and exits, so Python 3.12's fork-with-threads warning does not apply.
FORK_IN_XDIST_WORKER = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


SOURCE = textwrap.dedent(
    """\
    from . import sibling

    LIMIT = 10


    def price(x):
        return x * LIMIT


    class Cart:
        def total(self):
            return price(2)
    """
)


def wait_ready(helper: ParseHelper, relpath: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not helper.ready(relpath):
        remaining = deadline - time.monotonic()
        assert remaining > 0 and helper.fileno() >= 0, f"no answer for {relpath}"
        select.select([helper], [], [], remaining)


def as_tuple(row: FileRow) -> tuple[object, ...]:
    return (row.path, row.kind, row.mtime_ns, row.size, row.digest, row.blocks, row.imports)


@pytest.fixture
def helper(tmp_path: Path):
    parse_helper = ParseHelper(tmp_path)
    yield parse_helper
    parse_helper.close()


def test_answers_what_parsing_in_process_gives(tmp_path: Path, helper: ParseHelper) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "shop.py").write_text(SOURCE)
    (tmp_path / "broken.py").write_text("def broken(:\n")
    for rel in ("pkg/shop.py", "broken.py"):
        helper.request(rel, "python")
    for rel in ("pkg/shop.py", "broken.py"):
        wait_ready(helper, rel)
        row = helper.take(rel)
        assert row is not None
        expected, _ = read_state(tmp_path, rel, "python")
        assert as_tuple(row) == as_tuple(expected)
        assert row.error == expected.error
    assert helper.take("pkg/shop.py") is None  # each answer is taken once


def test_no_helper_until_something_is_requested(helper: ParseHelper) -> None:
    assert helper.take("never_asked.py") is None
    assert not helper.started


def test_a_file_changed_after_the_helper_read_it_is_read_again(
    tmp_path: Path, helper: ParseHelper
) -> None:
    path = tmp_path / "shop.py"
    path.write_text(SOURCE)
    helper.request("shop.py", "python")
    wait_ready(helper, "shop.py")
    path.write_text(SOURCE + "\n\ndef added():\n    return 1\n")
    state, changed = read_state(tmp_path, "shop.py", "python", None, helper.take("shop.py"))
    assert changed
    assert "added" in [block[0] for block in state.blocks]


def test_same_content_as_the_stored_state_is_not_a_change(
    tmp_path: Path, helper: ParseHelper
) -> None:
    path = tmp_path / "shop.py"
    path.write_text(SOURCE)
    stored, _ = read_state(tmp_path, "shop.py", "python")
    stored.id = 7
    os.utime(path, ns=(stored.mtime_ns + 5_000_000_000, stored.mtime_ns + 5_000_000_000))
    helper.request("shop.py", "python")
    wait_ready(helper, "shop.py")
    state, changed = read_state(tmp_path, "shop.py", "python", stored, helper.take("shop.py"))
    assert not changed
    assert state.id == 7 and state.blocks == stored.blocks
    assert state.mtime_ns == stored.mtime_ns + 5_000_000_000


def test_a_dead_helper_costs_nothing_but_its_answers(tmp_path: Path, helper: ParseHelper) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    (tmp_path / "b.py").write_text("B = 1\n")
    helper.request("a.py", "python")
    wait_ready(helper, "a.py")
    assert helper._pid is not None
    os.kill(helper._pid, 9)
    select.select([helper], [], [], 60)  # its end of the pipe closes
    assert helper.take("a.py") is not None  # what arrived before still counts
    assert helper.fileno() == -1  # noticed on the way: closed and reaped
    helper.request("b.py", "python")
    assert helper.take("b.py") is None


def test_close_reaps_the_helper(tmp_path: Path, helper: ParseHelper) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    helper.request("a.py", "python")
    pid = helper._pid
    assert pid is not None
    helper.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    helper.request("a.py", "python")
    assert not helper.started


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_no_helper_on_a_single_core(tmp_path: Path) -> None:
    # In a fresh interpreter pinned to one CPU, as a one-core container would be.
    import subprocess
    import sys

    (tmp_path / "a.py").write_text("A = 1\n")
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from testmon_watch.measure.parse_helper import ParseHelper
        os.sched_setaffinity(0, {{min(os.sched_getaffinity(0))}})
        helper = ParseHelper(Path({str(tmp_path)!r}))
        helper.request("a.py", "python")
        print(helper.started)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@FORK_IN_XDIST_WORKER
def test_a_forked_child_lets_go_of_the_helper(tmp_path: Path, helper: ParseHelper) -> None:
    # A process a test forks (a daemon outliving the session) must neither use nor
    # end the session's helper, nor keep its input open.
    (tmp_path / "a.py").write_text("A = 1\n")
    helper.request("a.py", "python")
    assert helper.started
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it sees, then leave without cleanup
        os.close(read_end)
        os.write(write_end, f"{helper.started} {helper.fileno()}".encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        seen = pipe.read()
    os.waitpid(pid, 0)
    assert seen == "False -1"
    wait_ready(helper, "a.py")  # the parent's helper is still there and answering
    assert helper.take("a.py") is not None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_owes_the_files_it_has_not_answered(tmp_path: Path, helper: ParseHelper) -> None:
    # A named pipe holds the helper in its read until something is written: it owes
    # that file for as long as this test wants, with no timing involved.
    fifo = tmp_path / "slow.py"
    os.mkfifo(fifo)
    assert not helper.owes()
    helper.request("slow.py", "python")
    assert helper.owes()
    with open(fifo, "w") as writer:  # returns once the helper opened it to read
        writer.write("LIMIT = 10\n")
    wait_ready(helper, "slow.py")
    assert not helper.owes()  # answered: owed no more, taken or not
    assert helper.take("slow.py") is not None
    assert not helper.owes()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_dead_helper_owes_nothing(tmp_path: Path, helper: ParseHelper) -> None:
    os.mkfifo(tmp_path / "slow.py")
    helper.request("slow.py", "python")
    assert helper.owes() and helper._pid is not None
    os.kill(helper._pid, 9)
    select.select([helper], [], [], 60)  # its end of the pipe closes
    assert not helper.owes()  # nothing more will come: the parent parses it itself
