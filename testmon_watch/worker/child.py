"""One run inside a worker child: pytest.main with the event streamer, then exit.

The server forks a child per run and calls `run_child` in it; where fork does not
exist, it starts `python -m testmon_watch.worker.child` instead, which reads the
same arguments from the command line (`wire.server_args.ChildArgs`). Either way
the child writes protocol events to `event_fd` and its own stdout/stderr go to a
capped output pipe.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testmon_watch.core.outcomes import RunMode
from testmon_watch.core.reasons import Reason, ReasonKind
from testmon_watch.wire.server_args import ArgsError, decode_child
from testmon_watch.wire.standby import Release, StandbyExit
from testmon_watch.wire.worker_protocol import Message, RunCommand, StandbyReady, encode
from testmon_watch.worker.code_cache import use_code_caches

# A folder: each run's child writes a cProfile of the run there (RunProfile).
PROFILE_ENV = "TESTMON_WATCH_PROFILE_DIR"

# Why a test runs when the plugin gives no reason of its own (it was up to date).
DEFAULT_REASONS: dict[RunMode, Reason | None] = {
    RunMode.ALL: Reason(ReasonKind.FULL_RUN),
    RunMode.NODEIDS: Reason(ReasonKind.REQUESTED),
    RunMode.FAILED: Reason.failed(),
    RunMode.AFFECTED: None,
}


def pytest_args(cmd: RunCommand) -> tuple[list[str], bool]:
    """pytest's arguments for a run command, and whether only failed tests must be kept."""
    args = list(cmd.args)
    if cmd.mode is RunMode.ALL:
        return [*args, "--testmon-noselect"], False
    if cmd.mode in (RunMode.NODEIDS, RunMode.FAILED) and cmd.nodeids:
        # Explicit node ids run whatever they name; testmon still records them.
        return [*args, "--testmon-noselect", *cmd.nodeids], False
    if cmd.mode is RunMode.FAILED:
        # No ids given: testmon's own record of failing tests, filtered by the streamer.
        return [*args, "--testmon"], True
    return [*args, "--testmon"], False


def _prepare_process(root: Path, args: list[str]) -> None:
    # Signals as a plain Python process has them: the server's handlers are not ours.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for name in ("SIGTERM", "SIGCHLD", "SIGPIPE"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    os.chdir(root)
    sys.argv = ["pytest", *args]


def _pipe_writer(event_fd: int) -> Callable[[Message], None]:
    def send(message: Message) -> None:
        data = encode(message)
        while data:
            data = data[os.write(event_fd, data) :]

    return send


# The server preloads pytest plugins (xdist, our own...) before pytest starts, so
# pytest warns that it cannot rewrite their asserts; a project whose ini says
# `filterwarnings = error` would turn that into an error and run nothing. A
# command-line filter outranks the ini's; only pytest's rewriting emits this one.
PRELOAD_WARNING_FILTER = ("-W", "ignore::pytest.PytestAssertRewriteWarning")


def _main(args: list[str], plugins: list[object]) -> int:
    import pytest

    try:
        return int(pytest.main([*PRELOAD_WARNING_FILTER, *args], plugins=plugins))
    except SystemExit as exc:  # a plugin or conftest calling sys.exit at configure time
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - the child ends by its exit code, never unwinding
        print(f"testmon-watch worker child: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3


def run_child(
    cmd: RunCommand, event_fd: int, root: Path, preload_path: Path | None, t0: float
) -> int:
    """Run pytest for `cmd`, streaming events to `event_fd`; returns pytest's exit code."""
    args, only_failed = pytest_args(cmd)
    _prepare_process(root, args)
    from testmon_watch.worker.streamer import EventStreamer

    streamer = EventStreamer(
        cmd.run_id,
        cmd.trigger,
        _pipe_writer(event_fd),
        t0,
        root,
        preload_path,
        only_failed=only_failed,
        default_reason=DEFAULT_REASONS[cmd.mode],
    )
    profile = RunProfile.from_environment()
    profile.start()
    code = _main(args, [streamer])
    profile.save(cmd.run_id)
    # Usage errors end pytest before our plugin is configured: say the run is over anyway.
    streamer.finish(code)
    return code


def run_standby(
    run_args: list[str],
    control_fd: int,
    event_fd: int,
    root: Path,
    preload_path: Path | None,
    early_gate: bool = False,
    recent_saves: tuple[str, ...] = (),
) -> int:
    """Start the next 'affected' run now and hold it at the gate (see standby.py).

    `recent_saves`: project files (relative paths) saved lately, the latest first:
    the gate parses them while it waits.

    Nothing is sent before the release, so a standby that is dropped, or that
    finds itself stale, leaves no trace in the event stream.
    """
    args, _ = pytest_args(RunCommand(args=list(run_args), mode=RunMode.AFFECTED))
    _prepare_process(root, args)
    from testmon_watch.worker.standby import RunGate
    from testmon_watch.worker.streamer import EventStreamer

    write = _pipe_writer(event_fd)

    def send(message: Message) -> None:
        if gate.released:
            write(message)

    streamer = EventStreamer("", None, send, time.time(), root, preload_path)
    profile = RunProfile.from_environment()

    def on_release(release: Release) -> None:
        profile.start()
        streamer.start_run(release.command.run_id, release.command.trigger, release.t0)

    gate = RunGate(
        control_fd,
        root,
        lambda: write(StandbyReady(pid=os.getpid())),
        on_release,
        early_gate,
        preload_path,
        recent_saves,
    )
    code = _main(args, [streamer, gate])
    if not gate.released:
        return StandbyExit.UNUSED
    profile.save(streamer.run_id)
    streamer.finish(code)
    return code


class RunProfile:
    """cProfile of one run, from its release to pytest's end, when PROFILE_ENV names a folder.

    For finding where a save's time goes in the child (`pstats` reads the files).
    """

    def __init__(self, folder: str | None) -> None:
        self.folder = folder
        self._profile: Any = None

    @classmethod
    def from_environment(cls) -> RunProfile:
        return cls(os.environ.get(PROFILE_ENV) or None)

    def start(self) -> None:
        if self.folder is not None:
            import cProfile

            self._profile = cProfile.Profile()
            self._profile.enable()

    def save(self, run_id: str) -> None:
        if self._profile is None or self.folder is None:
            return
        self._profile.disable()
        name = f"child-{run_id or 'run'}-{os.getpid()}.prof"
        try:
            os.makedirs(self.folder, exist_ok=True)
            self._profile.dump_stats(os.path.join(self.folder, name))
        except OSError as exc:
            print(f"testmon-watch worker child: cannot save profile: {exc}", file=sys.stderr)


def register_stack_dump() -> None:
    """SIGUSR1 makes this process print every thread's stack to its fd 2 (the output pipe).

    The fd is a dup taken before pytest's capture redirects fd 2, so the dump reaches
    the server even while a test's output is captured: the server sends SIGUSR1 to a
    test that timed out before killing it, and the dump shows where it hung.
    """
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=os.dup(2), all_threads=True)


def main(argv: list[str] | None = None) -> int:
    """Fresh-process fallback: `python -m testmon_watch.worker.child --event-fd N ...`."""
    try:
        args = decode_child(list(sys.argv[1:] if argv is None else argv))
    except ArgsError as exc:
        print(f"testmon-watch worker child: {exc}", file=sys.stderr)
        return 2
    register_stack_dump()
    use_code_caches(args.root)
    code = run_child(args.command, args.event_fd, args.root, args.preload_path, args.t0)
    sys.stdout.flush()
    sys.stderr.flush()
    # Like the forked child: no atexit handlers or non-daemon threads may delay the end.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
