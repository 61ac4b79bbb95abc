"""Command-line entry point of `testmon-watch`: options, configuration, and the chosen front end."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from testmon_watch import __version__
from testmon_watch.config import OnChange, WatchConfig

EXIT_USAGE = 4  # as pytest: bad command line or configuration
COMBINE = "combine"  # the subcommand that merges data files (testmon_watch/combine.py)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="testmon-watch",
        description="Watch the project and rerun the tests each change affects, in a warm worker. "
        "Arguments after -- go to pytest.",
        epilog="testmon-watch combine OUT IN...: merge data files recorded by shards of one "
        "suite (testmon-watch combine -h).",
    )
    parser.add_argument("--version", action="version", version=f"testmon-watch {__version__}")
    parser.add_argument(
        "--root",
        type=Path,
        default=Path.cwd(),
        help="project root to watch and test (default: the current directory)",
    )
    parser.add_argument(
        "--no-tui",
        action="store_true",
        help="plain streamed text instead of the terminal app "
        "(the default when stdout is not a terminal)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="run what is affected once and exit with pytest's exit code",
    )
    parser.add_argument(
        "--no-run-on-start",
        action="store_true",
        help="do not run the tests affected since the last run when starting",
    )
    parser.add_argument(
        "--poll", action="store_true", help="poll for changes instead of native file events"
    )
    parser.add_argument(
        "--on-change",
        choices=[mode.value for mode in OnChange],
        type=OnChange,
        default=None,
        help="a change during a run: run right after it (queue, default) or "
        "cancel it and start again (restart)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="per-test timeout (default: none)",
    )
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="watch paths matching GLOB even if ignored (repeatable)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="GLOB",
        help="ignore paths matching GLOB (repeatable)",
    )
    parser.add_argument(
        "--debounce-ms",
        type=int,
        default=None,
        metavar="MS",
        help="quiet time that ends a burst of changes (default 50)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print every test and why it was selected"
    )
    return parser


def split_pytest_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    args = list(argv)
    if "--" in args:
        index = args.index("--")
        return args[:index], args[index + 1 :]
    return args, []


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `testmon-watch` command and return its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    # A subcommand only as the very first word: `testmon-watch -- combine` is pytest's.
    if args[:1] == [COMBINE]:
        from testmon_watch.combine import main as combine_main

        return combine_main(args[1:])
    own, pytest_args = split_pytest_args(args)
    options = build_parser().parse_args(own)
    root = options.root.resolve()
    if not root.is_dir():
        print(f"testmon-watch: no such directory: {root}", file=sys.stderr)
        return EXIT_USAGE

    from dataclasses import replace

    from testmon_watch.config import ConfigError, load_watch_config

    try:
        config = load_watch_config(root)
    except ConfigError as exc:
        print(f"testmon-watch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config = replace(
        config,
        include=[*config.include, *options.include],
        ignore=[*config.ignore, *options.ignore],
        poll=config.poll or options.poll,
        debounce_ms=options.debounce_ms if options.debounce_ms is not None else config.debounce_ms,
        timeout=options.timeout if options.timeout is not None else config.timeout,
        run_on_start=config.run_on_start and not options.no_run_on_start,
        on_change=options.on_change or config.on_change,
    )
    headless = options.no_tui or options.once or not sys.stdout.isatty()
    if not headless:
        try:
            from testmon_watch.ui.app import run_app
        except ImportError:
            headless = True  # the terminal app is not installed in this build
        else:
            return run_app(root, config, pytest_args, options)
    try:
        return run_headless(root, config, pytest_args, options)
    except KeyboardInterrupt:
        return 130


def run_headless(
    root: Path, config: WatchConfig, pytest_args: list[str], options: argparse.Namespace
) -> int:
    from testmon_watch.core.runs import PytestExit
    from testmon_watch.headless import HeadlessPrinter
    from testmon_watch.session import WatchSession

    printer = HeadlessPrinter(verbose=options.verbose)
    session = WatchSession(
        root,
        printer,
        config,
        pytest_args=pytest_args,
        on_change=config.on_change,
        timeout=config.timeout,
        watch=not options.once,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        session.start(run_on_start=options.once or config.run_on_start)
        if options.once:
            while not stop.is_set() and not session.wait_idle(0.2):
                pass
            done = session.last_done
            if done is None:
                return 1 if stop.is_set() else 0
            status = done.finished.exitstatus
            if isinstance(status, int):  # pytest's own code; "no tests" is no failure here
                return 0 if status == PytestExit.NO_TESTS_COLLECTED else status
            return 1  # crashed, timed out or cancelled
        printer.line(
            printer.paint(
                f"watching {session.watched_files} files in {root} · Ctrl-C to stop", "dim"
            )
        )
        while not stop.wait(0.5):
            pass
        return 0
    finally:
        # A second Ctrl-C while shutting down must not leave a traceback or strays.
        session.stop()
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
