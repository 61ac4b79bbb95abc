"""Command-line and ini options, and what this session does as they add them up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from testmon_watch.core.defaults import DEFAULT_ENVIRONMENT

if TYPE_CHECKING:
    from testmon_watch.paths import ProjectPaths


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup(
        "testmon-watch", "testmon-watch: run only the tests affected by your changes"
    )
    group.addoption(
        "--testmon",
        action="store_true",
        dest="testmon",
        help="Select tests affected by changes since the last run, and record "
        "what each test executes into .testmondata.",
    )
    group.addoption(
        "--testmon-noselect",
        action="store_true",
        dest="testmon_noselect",
        help="Record and reorder (failures first, fastest first), deselect nothing.",
    )
    group.addoption(
        "--testmon-nocollect",
        action="store_true",
        dest="testmon_nocollect",
        help="Select affected tests but record nothing (no tracing overhead).",
    )
    group.addoption(
        "--testmon-forceselect",
        action="store_true",
        dest="testmon_forceselect",
        help="Apply selection even when -k, -m or node ids are given "
        "(by default they run everything they match).",
    )
    group.addoption(
        "--no-testmon",
        action="store_true",
        dest="no_testmon",
        help="Switch testmon-watch off, even if another option turns it on.",
    )
    group.addoption(
        "--testmon-env",
        action="store",
        dest="testmon_env",
        default=None,
        metavar="NAME",
        help="Keep a separate data set for this environment name (default: "
        "the ini option testmon_env, else 'default').",
    )
    group.addoption(
        "--testmon-explain",
        action="store_true",
        dest="testmon_explain",
        help="Say why each selected test was selected; for node ids given on the "
        "command line, also why they would not be.",
    )
    group.addoption(
        "--testmon-verify",
        action="store_true",
        dest="testmon_verify",
        help="Run the whole suite, record, and report every test that selection "
        "would have skipped although its outcome changed (exit 1 if any).",
    )
    group.addoption(
        "--testmon-cov",
        action="store",
        dest="testmon_cov",
        nargs="?",
        const="",
        default=None,
        metavar="SOURCE",
        help="Write .coverage for the whole suite (child processes included, one "
        "context per test): this run's lines plus those of deselected tests "
        "still up to date. SOURCE (comma-separated dirs, files or packages) "
        "limits it like coverage's --source.",
    )
    group.addoption(
        "--testmon-baseline",
        action="store",
        dest="testmon_baseline",
        default=None,
        metavar="FILE",
        help="Select as --testmon does, also against this data file recorded elsewhere "
        "(a CI artifact): its records are checked against the files here and the newer "
        "record of a test wins; only the local data file is written. Write it with '=' "
        "(default: the ini option testmon_baseline).",
    )
    parser.addini("testmon_env", "Default --testmon-env name.", default="")
    parser.addini(
        "testmon_baseline",
        "Default --testmon-baseline data file (relative to the ini file's folder).",
        default="",
    )
    parser.addini("testmon", "Run with --testmon by default.", type="bool", default=False)


@dataclass(frozen=True)
class TestmonOptions:
    """What this pytest session does, derived from the options."""

    __test__ = False  # not a test class, whatever its name

    active: bool
    select: bool  # deselect unaffected tests
    record: bool  # trace and store dependencies
    reorder: bool
    explain: bool
    verify: bool
    environment: str
    datafile: Path
    coverage_source: list[str] | None = None  # None: no --testmon-cov
    baseline: Path | None = None  # --testmon-baseline: a data file recorded elsewhere


def project_paths(config: pytest.Config) -> ProjectPaths:
    """The data file and its companions of the project pytest runs (see testmon_watch.paths)."""
    from testmon_watch.paths import ProjectPaths  # not loaded by a run without --testmon

    return ProjectPaths.of(config.rootpath)


def baseline_path(config: pytest.Config) -> Path | None:
    """--testmon-baseline (from the invocation folder), else the ini option (from its file's)."""
    given = config.getoption("testmon_baseline", None)
    if given:
        return Path(config.invocation_params.dir, Path(str(given)).expanduser())
    configured = str(config.getini("testmon_baseline") or "")
    if not configured:
        return None
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    return base / Path(configured).expanduser()


def baseline_spelling_problem(config: pytest.Config) -> str | None:
    """Why `--testmon-baseline FILE` (two words) may have misled pytest, or None.

    pytest chooses the rootdir before it loads plugins, so before it knows this
    option: the FILE of `--testmon-baseline FILE` is then taken for a test path,
    and the rootdir becomes FILE's folder, or an ancestor of it (the `=` form
    starts with `-` and is passed over). Harmless when that changed nothing that
    can be seen: FILE and the invocation folder both inside a rootdir that holds
    the ini file. Otherwise the user is asked for the `=` form, or `--rootdir`.
    """
    args = [str(a) for a in config.invocation_params.args]
    if "--testmon-baseline" not in args or config.getoption("rootdir", None):
        return None
    at = args.index("--testmon-baseline") + 1
    if at >= len(args):
        return None
    value = args[at]
    where = Path(config.invocation_params.dir)
    path = Path(where, value)
    if not path.exists():
        return None  # pytest's early look passes over paths that do not exist

    def inside(folder: Path) -> bool:
        return folder.resolve().is_relative_to(config.rootpath)

    ini_at_root = config.inipath is not None and config.inipath.parent == config.rootpath
    if ini_at_root and inside(path.parent) and inside(where):
        return None
    return (
        f"write --testmon-baseline={value} (with '='): pytest chooses its rootdir before it "
        f"knows this option and took {value} for a test path (rootdir {config.rootpath})"
    )


def _has_narrowing(config: pytest.Config) -> bool:
    """Did this invocation choose its tests (-k, -m or node ids on the command line)?

    A -k or -m that comes from the ini file's `addopts` (packaging's `-m "not ..."`)
    is the project's standing filter, not a choice for this run: selection still
    applies within it. Otherwise such a project would run its whole suite every time.
    """
    filtered = config.getoption("keyword", "") or config.getoption("markexpr", "")
    if filtered and any(is_filter_option(str(a)) for a in config.invocation_params.args):
        return True
    return any("::" in str(arg) for arg in config.args)


def is_filter_option(arg: str) -> bool:
    # "-k EXPR", "-kEXPR", "-m EXPR", "-mEXPR"; pytest has no other option starting so.
    return arg.startswith(("-k", "-m")) and not arg.startswith("--")


def testmon_options(config: pytest.Config) -> TestmonOptions:
    opt = config.getoption
    wanted = (
        opt("testmon")
        or opt("testmon_noselect")
        or opt("testmon_nocollect")
        or opt("testmon_forceselect")
        or opt("testmon_explain")
        or opt("testmon_verify")
        or opt("testmon_cov") is not None
        or opt("testmon_baseline")  # the option asks for selection; the ini option alone not
        or bool(config.getini("testmon"))
    )
    active = bool(wanted) and not opt("no_testmon")
    verify = bool(opt("testmon_verify"))
    select = not opt("testmon_noselect") and not verify
    if select and _has_narrowing(config) and not opt("testmon_forceselect"):
        select = False
    environment = (
        opt("testmon_env") or str(config.getini("testmon_env") or "") or DEFAULT_ENVIRONMENT
    )
    datafile = project_paths(config).datafile
    return TestmonOptions(
        active=active,
        select=select,
        record=not opt("testmon_nocollect"),
        reorder=True,
        explain=bool(opt("testmon_explain")),
        verify=verify,
        environment=environment,
        datafile=datafile,
        coverage_source=(
            None
            if opt("testmon_cov") is None
            else [p.strip() for p in str(opt("testmon_cov")).split(",") if p.strip()]
        ),
        baseline=baseline_path(config),
    )
