"""worker.processes: a child with event and output pipes, forked or spawned; kill, reap, exits."""

from __future__ import annotations

import gc
import os
import selectors
import signal
import sys
from pathlib import Path

import pytest

from testmon_watch.worker.processes import (
    Child,
    ProcessExit,
    fork_child,
    kill_group,
    reap,
    spawn_child,
)

# Under pytest-xdist the test process runs execnet's threads; the forked child here
# only touches pipes and exits, so Python 3.12's fork-with-threads warning does not apply.
FORK_IN_XDIST_WORKER = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


def test_an_exit_is_described_in_both_phrasings() -> None:
    assert str(ProcessExit(-9)) == "killed by signal 9 (SIGKILL)"
    assert ProcessExit(-9).short == "signal 9, SIGKILL"
    assert str(ProcessExit(3)) == "exited with status 3"
    assert ProcessExit(3).short == "exit status 3"
    assert str(ProcessExit(None)) == "ended with an unknown status"
    assert ProcessExit(None).short == "unknown status"
    assert str(ProcessExit(-250)) == "killed by signal 250 (unknown signal)"


def read_all(fd: int) -> bytes:
    """Everything written to the non-blocking pipe `fd` until its writer closes it."""
    data = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            selector.select(60)
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                break
            data += chunk
    os.close(fd)
    return bytes(data)


def finish(child: Child) -> tuple[bytes, bytes, int | None]:
    events, output = read_all(child.event_fd), read_all(child.output_fd)
    child.wait()
    return events, output, child.proc.returncode if child.proc is not None else None


@FORK_IN_XDIST_WORKER
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_writes_both_pipes_and_leads_its_own_group() -> None:
    def body(event_fd: int) -> int:
        os.write(event_fd, f"{os.getpgid(0)}\n".encode())
        os.write(1, b"to the output pipe\n")  # fd 1 (pytest captures sys.stdout here)
        return 0

    try:
        child = fork_child(body, close_in_child=(), detach=lambda: None)
    finally:
        gc.unfreeze()  # fork_child froze this process's heap, as the server wants for itself
    events, output, _ = finish(child)
    assert events == f"{child.pid}\n".encode()  # its pid is its process group
    assert output == b"to the output pipe\n"


def test_a_spawned_child_gets_its_event_fd_in_argv(tmp_path: Path) -> None:
    code = "import os, sys; os.write(int(sys.argv[1]), b'event'); print('out')"
    child = spawn_child(lambda fd: [sys.executable, "-c", code, str(fd)], cwd=tmp_path)
    assert finish(child) == (b"event", b"out\n", 0)


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups only")
def test_kill_group_ends_the_child_and_reap_says_how(tmp_path: Path) -> None:
    code = "import time; time.sleep(600)"
    child = spawn_child(lambda fd: [sys.executable, "-c", code], cwd=tmp_path)
    kill_group(child.pid)
    kill_group(None)  # no group: nothing to do
    assert child.proc is not None and child.proc.wait(60) == -signal.SIGKILL
    kill_group(child.pid)  # gone already: no error
    for fd in (child.event_fd, child.output_fd):
        os.close(fd)
    assert reap(child.pid) == 0  # reaped already
