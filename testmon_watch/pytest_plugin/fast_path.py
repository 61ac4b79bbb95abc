"""The no-change fast path: end `pytest --testmon` before collection when nothing would run.

A run with nothing to do still pays for pytest's configuration, the tracer, the
project's conftest.py imports, selection and collection. When the data file shows
that nothing can run, this module ends the session right after the command line
is parsed, without importing conftest.py files (`noconftest`) or starting the
tracer, and prints what the normal path would have concluded.

"Nothing would run" is decided conservatively, before conftest.py files load,
and every doubt sends the run down the normal path:

- only options that change output, never what runs or what is written (an
  allowlist), no option unknown at this point, no `-k`/`-m`/node ids/`--lf`,
  no xdist, no plugins passed to `pytest.main`, no gate (the warm worker);
- no plugin other than pytest's, xdist's and ours adds collection hooks or a
  `pytest_cmdline_main`; no conftest.py in the collection scope mentions one
  (nor `pytest_plugins`, `pluginmanager` or `sys.path`) and none is new;
- the environment is unchanged: same interpreter, and the installed packages
  read from the same metadata files as `importlib.metadata` reads them;
- no tracked file changed: the engine's own stat, hash and blocks comparison
  (`detect_changes`); a file with a new mtime but the same content is stored
  as the normal path would store it;
- no test of the environment is pending or failed last time;
- every file of the collection scope that pytest would collect (`python_files`,
  doctest globs, honouring `norecursedirs`, virtualenvs, `--ignore` and
  `--ignore-glob`, but not `collect_ignore`, so a superset) is a known test
  file, a module that the last runs collected under the same standing filter
  and that gave no test (`filtered_file`: all its tests deselected by the
  ini's `-m`, say), or a text file without a `>>>` prompt (a doctest file with
  no test in it); recorded tests all live in files matching those patterns (no
  custom collector at work);
- no conftest.py implements a collection hook, unless it is inert: no
  parameter it uses, no value it returns (packaging's `pytest_collection()`
  that only turns the garbage collector off).

The normal path, in that state, skips every known test file without importing
it and selects nothing; the fast path reports the same deselection.

The first doubt found is raised as `NotFast` with a typed reason
(`fast_path_reasons.NotTaken`), stashed on the config for `--testmon-explain`
to print as one line.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from testmon_watch.pytest_plugin.fast_path_reasons import (
    TAKEN_LINE,
    NotTaken,
    Why,
    not_taken,
    shown_path,
)
from testmon_watch.pytest_plugin.filtered_modules import filter_in_force
from testmon_watch.pytest_plugin.names import GATE_PLUGIN
from testmon_watch.pytest_plugin.options import is_filter_option
from testmon_watch.pytest_plugin.trusted_hooks import (
    COLLECTION_HOOKS,
    inert_hooks,
    untrusted_hook,
)

if TYPE_CHECKING:
    from testmon_watch.core.reasons import ChangedFile, EnvironmentChange

MAX_DIRECTORIES = 100_000  # a scope this large is not walked: the normal path decides

# Options (argparse dests) that may differ from their defaults: they change only
# how a run reports, or narrow what it collects. Anything else, and any option
# pytest does not know before conftest.py files load, means the normal path.
# pytest's -k and -m: harmless when they come from the ini file, not the command line.
STANDING_FILTERS = frozenset({"keyword", "markexpr"})
HARMLESS_OPTIONS = frozenset(
    {
        "testmon",
        "testmon_env",
        "testmon_explain",  # adds one line (and `why these tests`, empty when nothing runs)
        "verbose",
        "quiet",
        "reportchars",
        "disable_warnings",
        "showlocals",
        "tbstyle",
        "showcapture",
        "fulltrace",
        "color",
        "code_highlight",
        "no_header",
        "no_summary",
        "fold_skipped",
        "force_short_summary",
        "xfail_tb",
        "durations",
        "durations_min",
        "capture",
        "pythonwarnings",
        "exitfirst",
        "maxfail",
        "strict",
        "strict_markers",
        "strict_config",
        "rootdir",
        "inifilename",
        "override_ini",
        "confcutdir",
        "noconftest",
        "importmode",
        "assertmode",
        "basetemp",
        "ignore",
        "ignore_glob",
        "deselect",
        "log_level",
        "log_format",
        "log_date_format",
        "log_cli_level",
        "log_cli_format",
        "log_cli_date_format",
        "log_auto_indent",
        "logger_disable",
        "plugins",  # only `-p no:NAME`, checked below
        "file_or_dir",  # only existing paths, checked below
    }
)

# Text in a conftest.py that sends the run down the normal path.
CONFTEST_DOUBTS = re.compile(
    r"\b(?:pytest_make_collect_report|pytest_collect_file|pytest_collect_directory"
    r"|pytest_ignore_collect|pytest_collection|pytest_pycollect_makemodule|pytest_cmdline_main"
    r"|pytest_plugins|pluginmanager)\b|sys\.path"
)


class NotFast(Exception):
    """The fast path does not apply; `reason` says why (see fast_path_reasons)."""

    def __init__(
        self,
        why: Why,
        subject: object = "",
        detail: str = "",
        *,
        count: int = 0,
        files: Sequence[ChangedFile] = (),
        environment: EnvironmentChange | None = None,
    ) -> None:
        self.reason = NotTaken(why, str(subject), detail, count, tuple(files), environment)
        super().__init__(why.value, subject, detail)


@dataclass(frozen=True)
class NothingToRun:
    """The fast path's conclusion: every recorded test is up to date."""

    recorded: int
    started: float
    filtered: int = 0  # tests of modules the standing filter empties (not recorded)


FAST_PATH_KEY = pytest.StashKey[NothingToRun]()


# -- the decision ----------------------------------------------------------------


def decide(early_config: pytest.Config, args: Sequence[str]) -> NothingToRun | None:
    """In `pytest_load_initial_conftests`, before the tracer starts: may the run end early?

    On yes, conftest.py files are not imported and `pytest_cmdline_main` ends the
    session; on no (or any error while deciding) nothing has been changed.
    """
    started = time.perf_counter()
    try:
        recorded, filtered = _nothing_to_run(early_config, args)
    except NotFast as exc:
        not_taken(early_config, exc.reason)
        return None
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the normal path decides
        not_taken(early_config, NotTaken(Why.ERROR, detail=f"{type(exc).__name__}: {exc}"))
        return None
    result = NothingToRun(recorded, started, filtered)
    early_config.stash[FAST_PATH_KEY] = result
    # Read by pytest's own (trylast) hook right after ours.
    early_config.known_args_namespace.noconftest = True
    return result


def _nothing_to_run(config: pytest.Config, args: Sequence[str]) -> tuple[int, int]:
    """(recorded tests, tests of modules the filter empties) when nothing would run."""
    if config.invocation_params.plugins:
        raise NotFast(Why.PLUGINS_GIVEN)
    if config.pluginmanager.get_plugin(GATE_PLUGIN) is not None:
        raise NotFast(Why.WARM_WORKER)
    if "PYTEST_XDIST_WORKER" in os.environ:
        raise NotFast(Why.XDIST_WORKER)
    ns = _check_options(config, args)
    _check_plugins(config)
    root = config.rootpath
    scope = _scope(config, ns)
    from testmon_watch.core.db import Database
    from testmon_watch.core.defaults import DEFAULT_ENVIRONMENT
    from testmon_watch.core.environment import python_identity
    from testmon_watch.core.reasons import EnvironmentChange
    from testmon_watch.paths import datafile_path

    datafile = datafile_path(root)
    if not datafile.is_file():
        raise NotFast(Why.NO_DATA, shown_path(datafile, root))
    db, _ = Database.open(datafile, readonly=True)
    try:
        env_name = ns.testmon_env or str(config.getini("testmon_env") or "") or DEFAULT_ENVIRONMENT
        with db.snapshot():  # a concurrent run cannot mark tests between our reads
            stored = db.environment(env_name)
            if stored is None:
                raise NotFast(Why.ENVIRONMENT_UNKNOWN, env_name)
            if stored.python != python_identity():
                change = EnvironmentChange(python=(stored.python, python_identity()))
                raise NotFast(Why.ENVIRONMENT_CHANGED, environment=change)
            summary = db.test_file_summary(stored.id)
            files = db.files()
            filtered_rows = db.filtered_files(stored.id)
        if not summary:
            raise NotFast(Why.NONE_RECORDED)
        if None in summary:
            raise NotFast(Why.TEST_WITHOUT_FILE)
        due = sum(due for _, due in summary.values())
        if due:
            raise NotFast(Why.TESTS_DUE, count=due)
        path_of = {row.id: path for path, row in files.items()}
        test_files = {path_of.get(file_id) for file_id in summary if file_id is not None}
        if None in test_files:
            raise NotFast(Why.TEST_WITHOUT_FILE)
        patterns = _collect_patterns(config, ns)
        for path in test_files:
            if path and not _matches(os.path.join(root, path), patterns):
                raise NotFast(Why.CUSTOM_COLLECTOR, path)
        # Modules that gave no test under this same filter, in the state `files` holds.
        in_force = filter_in_force(ns.keyword, ns.markexpr, getattr(ns, "deselect", None))
        filtered = {
            path_of[file_id]: tests
            for file_id, (text, tests) in filtered_rows.items()
            if text == in_force and file_id in path_of and not files[path_of[file_id]].missing
        }
        walk = _walk_scope(root, scope, patterns, config, test_files, filtered)
        _check_conftests(root, walk.conftests, files)
        _check_environment(stored.packages, root, walk.conftests)
        _check_files(db, root, files)
        return sum(count for count, _ in summary.values()), walk.filtered_tests
    finally:
        db.close()


def _check_options(config: pytest.Config, args: Sequence[str]) -> argparse.Namespace:
    """Every option is known and harmless; returns the parsed namespace."""
    parser = config._parser
    ns, unknown = parser.parse_known_and_unknown_args(list(args), namespace=argparse.Namespace())
    if unknown:
        raise NotFast(Why.UNKNOWN_ARGUMENTS, " ".join(unknown))
    # Whether a baseline holds anything new is for the normal path to find out (it imports).
    baseline = getattr(ns, "testmon_baseline", None) or config.getini("testmon_baseline")
    if baseline:
        raise NotFast(Why.BASELINE, baseline)
    defaults, _ = parser.parse_known_and_unknown_args([], namespace=argparse.Namespace())
    missing = object()
    # -k/-m from the ini's addopts filter every run alike (see options.py): when every
    # recorded test is up to date, nothing runs under any filter. Typed, they choose.
    typed_filter = any(is_filter_option(str(a)) for a in config.invocation_params.args)
    harmless = HARMLESS_OPTIONS if typed_filter else HARMLESS_OPTIONS | STANDING_FILTERS
    for dest, value in vars(ns).items():
        if value != getattr(defaults, dest, missing) and dest not in harmless:
            raise NotFast(Why.OPTION, _option_name(parser, dest))
    # --testmon-explain alone turns selection on, as --testmon does (see options.py).
    asked = ns.testmon or ns.testmon_explain or config.getini("testmon")
    if not asked or getattr(ns, "no_testmon", False):
        raise NotFast(Why.NOT_ASKED)
    for plugin in ns.plugins or ():
        if not str(plugin).strip().startswith("no:"):
            raise NotFast(Why.PLUGIN_OPTION, str(plugin).strip())
    for arg in ns.file_or_dir or ():
        if "::" in str(arg):
            raise NotFast(Why.NODE_ID, arg)
        if not (config.invocation_params.dir / str(arg)).exists():
            raise NotFast(Why.NO_SUCH_PATH, arg)
    return ns


def _option_name(parser: pytest.Parser, dest: str) -> str:
    """'--testmon-verify' for the dest testmon_verify: the option as users type it.

    Read from pytest's option groups (private, so any surprise gives the dest).
    """
    groups = [getattr(parser, "_anonymous", None), *getattr(parser, "_groups", ())]
    for group in groups:
        for option in getattr(group, "options", ()):
            if getattr(option, "dest", None) == dest:
                names = [str(n) for n in option.names()]
                return max(names, key=len) if names else dest
    return dest


def _check_plugins(config: pytest.Config) -> None:
    found = untrusted_hook(config, COLLECTION_HOOKS)
    if found is not None:
        raise NotFast(Why.PLUGIN_HOOK, *found)


def _scope(config: pytest.Config, ns: argparse.Namespace) -> list[Path]:
    """The paths pytest collects from, as `Config._decide_args` computes them."""
    invocation = Path(config.invocation_params.dir)
    args: list[str] = [str(a) for a in ns.file_or_dir or ()]
    if not args and invocation == config.rootpath:
        for pattern in config.getini("testpaths"):
            args.extend(sorted(_glob(pattern)))
    if not args:
        args = [str(invocation)]
    return [Path(os.path.abspath(invocation / a)) for a in args]


def _glob(pattern: str) -> Iterable[str]:
    import glob

    return glob.iglob(pattern, recursive=True)


# -- the collection scope --------------------------------------------------------------


@dataclass(frozen=True)
class _Patterns:
    python_files: list[str]
    doctest_globs: list[str]
    norecursedirs: list[str]
    # --ignore and --ignore-glob (from the command line or addopts), as pytest applies
    # them: absolute paths, relative ones from the invocation folder.
    ignore_paths: frozenset[str] = frozenset()
    ignore_globs: tuple[str, ...] = ()

    def ignored(self, path: Path) -> bool:
        text = str(path)
        return text in self.ignore_paths or any(fnmatch(text, g) for g in self.ignore_globs)


def _collect_patterns(config: pytest.Config, ns: argparse.Namespace) -> _Patterns:
    here = config.invocation_params.dir
    return _Patterns(
        [str(p) for p in config.getini("python_files")],
        [str(p) for p in (getattr(ns, "doctestglob", None) or ["test*.txt"])],
        [str(p) for p in config.getini("norecursedirs")],
        frozenset(os.path.abspath(here / str(p)) for p in getattr(ns, "ignore", None) or ()),
        tuple(os.path.abspath(here / str(p)) for p in getattr(ns, "ignore_glob", None) or ()),
    )


def _matches_any(patterns: list[str], path: str) -> bool:
    """pytest's `fnmatch_ex`: a pattern without a separator matches the file name."""
    name = os.path.basename(path)
    for pattern in patterns:
        if os.sep in pattern or "/" in pattern:
            from _pytest.pathlib import fnmatch_ex

            if fnmatch_ex(pattern, path):
                return True
        elif fnmatch(name, pattern):
            return True
    return False


def _matches(path: str, patterns: _Patterns) -> bool:
    """Would pytest collect this file as a test module or doctest file?"""
    suffix = os.path.splitext(os.path.basename(path))[1]
    if suffix == ".py" and _matches_any(patterns.python_files, path):
        return True
    return _matches_any(patterns.doctest_globs, path)


@dataclass(frozen=True)
class _Walk:
    conftests: list[Path]
    filtered_tests: int  # tests of the modules passed over as emptied by the filter


def _walk_scope(
    root: Path,
    scope: list[Path],
    patterns: _Patterns,
    config: pytest.Config,
    test_files: set[str | None],
    filtered: dict[str, int],
) -> _Walk:
    """Raise on any collectable file that is neither a known test file nor one the
    standing filter empties (`filtered`: path -> its tests); return the conftests."""
    root_prefix = str(root) + os.sep
    conftests: set[Path] = set()
    passed_over: set[str] = set()

    def relative(path: Path) -> str:
        text = str(path)
        if not text.startswith(root_prefix):
            raise NotFast(Why.OUTSIDE_ROOT, path)
        return text[len(root_prefix) :].replace(os.sep, "/")

    def check_file(path: Path, given: bool) -> None:
        if path.name == "conftest.py":
            conftests.add(path)
            return
        if patterns.ignored(path):  # pytest does not collect it either
            return
        # A file named on the command line is collected whatever its name.
        collected = given or _matches(str(path), patterns)
        if not collected or relative(path) in test_files:
            return
        if relative(path) in filtered:
            passed_over.add(relative(path))
            return
        # A file named on the command line that yields no test is pytest's error
        # (or exit status) to report: only files the walk found may be passed over.
        if given or not _holds_no_doctest(path, config):
            raise NotFast(Why.NEW_TEST_FILE, relative(path))

    confcut = _confcutdir(config, root)
    seen: set[str] = set()
    for start in scope:
        for parent in (
            [start.parent, *start.parent.parents]
            if start.is_file()
            else [
                start,
                *start.parents,
            ]
        ):
            candidate = parent / "conftest.py"
            if candidate.is_file():
                conftests.add(candidate)
            if parent == confcut or parent == parent.parent:
                break
        if start.is_file():
            check_file(start, given=True)
            continue
        stack = [start]
        visited = 0
        while stack:
            directory = stack.pop()
            visited += 1
            if visited > MAX_DIRECTORIES:
                raise NotFast(Why.TOO_MANY_DIRECTORIES, count=MAX_DIRECTORIES)
            with os.scandir(directory) as entries:
                for entry in entries:
                    path = directory / entry.name
                    if entry.is_dir():
                        if entry.name == "__pycache__" or _ignored_dir(path, patterns):
                            continue
                        if entry.is_symlink():  # only links can lead in circles
                            real = os.path.realpath(path)
                            if real in seen:
                                continue
                            seen.add(real)
                        stack.append(path)
                    elif entry.is_file():
                        check_file(path, given=False)
    return _Walk(sorted(conftests), sum(filtered[p] for p in passed_over))


def _holds_no_doctest(path: Path, config: pytest.Config) -> bool:
    """A text file the doctest plugin collects, and in which it can find no test.

    `test*.txt` also matches files that are not doctests (more-itertools'
    `requirements/testing.txt`). pytest's `DoctestTextfile` yields an item only
    when doctest's parser finds an example, and every example starts with a
    `>>>` prompt: without one, the normal path collects the file and finds
    nothing. Read as pytest reads it; a file it cannot decode is its error.
    """
    if path.suffix == ".py":
        return False  # a module: only importing it says what it holds
    try:
        encoding = str(config.getini("doctest_encoding"))
        text = path.read_text(encoding)
    except (ValueError, OSError, LookupError):  # no doctest plugin; unreadable; UnicodeError
        return False
    return ">>>" not in text


def _ignored_dir(path: Path, patterns: _Patterns) -> bool:
    if patterns.ignored(path) or _matches_any(patterns.norecursedirs, str(path)):
        return True
    return (path / "pyvenv.cfg").is_file() or (path / "conda-meta" / "history").is_file()


def _confcutdir(config: pytest.Config, root: Path) -> Path:
    value = getattr(config.known_args_namespace, "confcutdir", None)
    if value:
        return Path(os.path.abspath(Path(config.invocation_params.dir) / str(value)))
    return config.inipath.parent if config.inipath is not None else root


def _check_conftests(root: Path, conftests: list[Path], files: dict[str, Any]) -> None:
    """Known and unchanged (checked with the other files), and no hook that we cannot see."""
    root_prefix = str(root) + os.sep
    for path in conftests:
        text = str(path)
        rel = text[len(root_prefix) :].replace(os.sep, "/") if text.startswith(root_prefix) else ""
        row = files.get(rel)
        if row is None or row.missing:
            raise NotFast(Why.NEW_CONFTEST, rel or path)
        doubt = _conftest_doubt(path.read_text(encoding="utf-8", errors="replace"))
        if doubt:
            raise NotFast(Why.CONFTEST_MAY_COLLECT, rel or path, doubt)


def _conftest_doubt(text: str) -> str | None:
    """The first word of CONFTEST_DOUBTS in a conftest.py that is not an inert hook."""
    inert: dict[str, int] | None = None
    for match in CONFTEST_DOUBTS.finditer(text):
        word = match[0]
        if word in COLLECTION_HOOKS:
            if inert is None:
                inert = inert_hooks(text)
            # Every mention of the name is an inert definition of it.
            if inert.get(word, 0) == len(re.findall(rf"\b{word}\b", text)):
                continue
        return word
    return None


# -- environment -------------------------------------------------------------------


def _check_environment(stored: dict[str, str], root: Path, conftests: list[Path]) -> None:
    """Installed packages as `core.environment` would read them, without `email` parsing.

    Importing conftest.py files may put more directories on sys.path before the
    normal path looks; none of them may hold package metadata.
    """
    from testmon_watch.core.environment import (
        METADATA_SUFFIXES,
        UnusualMetadata,
        read_installed_packages,
    )

    try:
        packages = read_installed_packages()
    except UnusualMetadata as exc:
        raise NotFast(Why.UNUSUAL_METADATA, detail=str(exc)) from None
    on_path = {os.path.abspath(p or ".") for p in sys.path}
    extra = {root}
    for conftest in conftests:
        directory = conftest.parent
        extra.add(directory)
        while (directory / "__init__.py").is_file() and directory != directory.parent:
            directory = directory.parent
            extra.add(directory)
        extra.update(p for p in conftest.parent.parents if root in (p, *p.parents))
    for directory in extra:
        if str(directory) in on_path:
            continue
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        if any(n.lower().endswith(METADATA_SUFFIXES) for n in names):
            _check_metadata_agrees(directory, packages, root)
    # After the metadata outside sys.path: when that disagrees, it is also why the
    # packages seem to differ (recorded with the directory on sys.path), and the
    # better thing to name.
    if packages != stored:
        raise NotFast(Why.ENVIRONMENT_CHANGED, environment=_package_change(stored, packages))


def _package_change(stored: dict[str, str], installed: dict[str, str]) -> EnvironmentChange:
    from testmon_watch.core.environment import Environment, environment_difference
    from testmon_watch.core.reasons import EnvironmentChange

    now = Environment("", "", installed)
    return environment_difference("", stored, now) or EnvironmentChange()


def _check_metadata_agrees(directory: Path, installed: dict[str, str], root: Path) -> None:
    """Metadata in a directory the normal path may put on sys.path changes nothing.

    A project installed with `pip install -e .` keeps `NAME.egg-info` at its root
    beside the installed NAME of the same version: whether or not the root is on
    sys.path when the normal path reads the environment, it reads the same
    packages. Metadata of a package not installed, or of another version, could
    change what it reads: then the normal path decides.
    """
    from testmon_watch.core.environment import read_installed_packages

    for name, version in read_installed_packages([str(directory)]).items():
        if installed.get(name) != version:
            where = shown_path(directory, root)
            raise NotFast(Why.METADATA_DISAGREES, where, f"{name} {version}")


# -- files ---------------------------------------------------------------------------


def _check_files(db: Any, root: Path, files: dict[str, Any]) -> None:
    """The engine's own comparison; content-identical files get their new stat stored."""
    from testmon_watch.core.changes import detect_changes

    changes = detect_changes(root, files)
    if changes.changed:
        raise NotFast(Why.FILES_CHANGED, files=changes.summary())
    if changes.restat:
        with db.transaction():
            for row in changes.restat:
                db.touch_file(row.id, row.mtime_ns, row.size)


# -- ending the session ------------------------------------------------------------------


def end_session(config: pytest.Config) -> int | None:
    """In `pytest_cmdline_main`: print pytest-like output and return 0, if decided so."""
    result = config.stash.get(FAST_PATH_KEY, None)
    if result is None:
        return None
    from _pytest.config import create_terminal_writer

    verbosity = config.get_verbosity()
    tw = create_terminal_writer(config, sys.stdout)
    duration = time.perf_counter() - result.started
    deselected = result.recorded + result.filtered
    summary = f"{deselected} deselected in {duration:.2f}s"
    explain = bool(config.getoption("testmon_explain", False))
    if verbosity >= 0:
        tw.sep("=", "test session starts", bold=True)
        tw.line(f"testmon-watch: changed: nothing; 0 of {result.recorded} recorded tests to run")
        tw.line(
            f"testmon-watch: selected 0, deselected {deselected} (nothing changed: not collected)"
        )
        if explain:
            tw.line(TAKEN_LINE)
        tw.line()
        tw.sep("=", summary, yellow=True, bold=True)
    else:
        if verbosity == -1:
            tw.line(f"testmon-watch: nothing changed, deselected {deselected}")
        if explain:  # asked for: said at any verbosity
            tw.line(TAKEN_LINE)
        tw.line(summary, yellow=True, bold=True)
    tw.flush()
    return 0
