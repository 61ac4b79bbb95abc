"""Process plumbing of the worker's server and client: start with pipes, kill, reap, describe exits.

A run's child is forked from the warm server (or, where fork does not exist,
started as a fresh process) with two pipes: one for protocol events and one
that takes its stdout and stderr. It leads a process group of its own, so one
`kill_group` ends it and whatever it started. Only the standard library is
imported here: the client side (the front-end process) uses this module too.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

NO_FORK_ENV = "TESTMON_WATCH_NO_FORK"  # start each run's child as a fresh process
CHILD_FAILED = 70  # a forked child's exit code when its body raised


def fork_available() -> bool:
    return hasattr(os, "fork") and not os.environ.get(NO_FORK_ENV)


@dataclass(frozen=True)
class ProcessExit:
    """How a process ended: the exit code as `subprocess` gives it (-N: killed by signal N)."""

    code: int | None

    def _signal_name(self) -> str | None:
        assert self.code is not None and self.code < 0
        try:
            return signal.Signals(-self.code).name
        except ValueError:
            return None

    def __str__(self) -> str:
        """The whole phrase: 'killed by signal 9 (SIGKILL)', 'exited with status 3'."""
        if self.code is None:
            return "ended with an unknown status"
        if self.code < 0:
            return f"killed by signal {-self.code} ({self._signal_name() or 'unknown signal'})"
        return f"exited with status {self.code}"

    @property
    def short(self) -> str:
        """For a parenthesis: 'signal 9, SIGKILL', 'exit status 3'."""
        if self.code is None:
            return "unknown status"
        if self.code < 0:
            name = self._signal_name()
            return f"signal {-self.code}, {name}" if name else f"signal {-self.code}"
        return f"exit status {self.code}"


def kill_group(pgid: int | None, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to the process group `pgid`, if it still exists."""
    if pgid is None or not hasattr(os, "killpg"):
        return
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def reap(pid: int) -> int | None:
    """The exit code of the child `pid` if it has ended (reaping it), else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 0  # reaped already
    return None if done == 0 else os.waitstatus_to_exitcode(status)


def wait(pid: int) -> None:
    """Block until the child `pid` has ended, and reap it."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # reaped already


def close_fds(fds: Iterable[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


@dataclass
class Child:
    """A started child: its pid (also its process group) and the read ends of its pipes."""

    pid: int
    event_fd: int
    output_fd: int
    proc: subprocess.Popen[bytes] | None = None  # a fresh process (no fork) only

    def exit_code(self) -> int | None:
        """Its exit code once it has ended (reaping it), else None."""
        return self.proc.poll() if self.proc is not None else reap(self.pid)

    def wait(self) -> None:
        if self.proc is not None:
            self.proc.wait()
        else:
            wait(self.pid)


def fork_child(
    body: Callable[[int], int], close_in_child: Iterable[int], detach: Callable[[], None]
) -> Child:
    """Fork a child that runs `body(event_fd)` in a process group of its own, then exits.

    In the child, `detach` runs first (to let go of the parent's selector), the
    fds in `close_in_child` are closed, stdin is /dev/null and stdout/stderr go
    to the output pipe. Returns the child with the pipes' read ends, non-blocking.
    """
    event_r, event_w = os.pipe()
    output_r, output_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    # The preloaded heap goes to the permanent generation: the child's collections
    # (pytest runs gc.collect five times at exit) skip it, and its pages stay shared.
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        _run_in_child(body, detach, (event_r, output_r, *close_in_child), event_w, output_w)
    try:
        os.setpgid(pid, pid)  # also in the parent: no window before the child does it
    except OSError:
        pass  # the child did it first, or is already gone
    os.close(event_w)
    os.close(output_w)
    for fd in (event_r, output_r):
        os.set_blocking(fd, False)
    return Child(pid, event_r, output_r)


def _run_in_child(
    body: Callable[[int], int],
    detach: Callable[[], None],
    close: tuple[int, ...],
    event_w: int,
    output_w: int,
) -> None:
    """In the forked child: let go of the parent's fds and signals, run, _exit."""
    code = CHILD_FAILED
    try:
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        detach()
        for fd in close:
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.set_blocking(0, True)
        os.dup2(output_w, 1)
        os.dup2(output_w, 2)
        os.close(output_w)
        os.set_blocking(event_w, True)
        code = body(event_w)
    except BaseException:  # noqa: BLE001 - the forked child must reach os._exit below
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def spawn_child(
    argv_for: Callable[[int], list[str]], cwd: Path, env: Mapping[str, str] | None = None
) -> Child:
    """Start `argv_for(event_fd)` as a fresh process with the same pipes as `fork_child`."""
    event_r, event_w = os.pipe()
    output_r, output_w = os.pipe()
    try:
        proc = subprocess.Popen(
            argv_for(event_w),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output_w,
            stderr=output_w,
            pass_fds=(event_w,),
            env=env,
            start_new_session=True,
        )
    except BaseException:
        close_fds((event_r, output_r))
        raise
    finally:
        close_fds((event_w, output_w))
    for fd in (event_r, output_r):
        os.set_blocking(fd, False)
    return Child(proc.pid, event_r, output_r, proc)
