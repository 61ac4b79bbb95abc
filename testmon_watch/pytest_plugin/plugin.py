"""Entry point of `pytest --testmon`: the hooks that start it and register its plugins.

`pytest_load_initial_conftests` starts the recorder before conftest.py files
are imported; `pytest_configure` reads the options and registers the session's
plugins, which share one `SessionState`:

    plugin                     module      job
    SESSION_PLUGIN             planning    open the data file, select, collect, deselect
    RESULTS_PLUGIN             results     save what ran, exit status, terminal summary
    RECORDING_PLUGIN           recording   recording contexts from pytest's hooks
    WINDOWS_PLUGIN             windows     below 3.12: trace only the doors into project code
    XDIST_PLUGIN               here        under xdist: the workers' session-end recordings

pytest imports this module in every run of an environment that has us
installed, `--testmon` or not: the recorder and the session's plugins are
imported only once a run needs them, so a run without `--testmon`, and one
that the no-change fast path ends, never load them. (The warm worker's
standby child configures pytest before a run is released, so it has them
loaded by then.)
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import TYPE_CHECKING, Any

import pytest

from testmon_watch.pytest_plugin.fast_path_reasons import NotTaken, Why, not_taken, shown_path
from testmon_watch.pytest_plugin.names import RESULTS_PLUGIN, SESSION_PLUGIN, XDIST_PLUGIN
from testmon_watch.pytest_plugin.options import (
    add_options,
    baseline_spelling_problem,
    project_paths,
    testmon_options,
)

if TYPE_CHECKING:
    from testmon_watch.measure.recorder import Recorder
    from testmon_watch.pytest_plugin.results import ResultHooks

RECORDER_KEY: pytest.StashKey[Recorder] = pytest.StashKey()
FAST_PATH_MODULE = "testmon_watch.pytest_plugin.fast_path"


def _pytest_testmon_installed() -> bool:
    return importlib.util.find_spec("testmon") is not None


def pytest_addoption(parser: pytest.Parser) -> None:
    if _pytest_testmon_installed():
        return  # pytest-testmon owns --testmon; pytest_configure explains
    add_options(parser)


# Neither tryfirst nor trylast: after pytest-cov's tryfirst hook has claimed the tracer
# (we must see that), and before pytest's own trylast hook imports the start-up
# conftest.py files (a later trylast hook runs after it, and their imports went unseen).
@pytest.hookimpl
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    """Start tracing before conftest.py files are imported, so their import is recorded."""
    if _pytest_testmon_installed():
        return
    ns = early_config.known_args_namespace
    wanted = any(
        getattr(ns, name, False)
        for name in (
            "testmon",
            "testmon_noselect",
            "testmon_forceselect",
            "testmon_explain",
            "testmon_verify",
            "testmon_baseline",
        )
    )
    # `testmon = true` in the ini file asks as --testmon does (see options.py): the
    # recorder must start, and the fast path be considered, here too.
    wanted = wanted or bool(early_config.getini("testmon"))
    if not wanted or getattr(ns, "no_testmon", False):
        return
    if getattr(ns, "testmon_nocollect", False):
        not_taken(early_config, NotTaken(Why.OPTION, "--testmon-nocollect"))
        return
    # An xdist worker is an execnet process started as `python -c ...`; the variable
    # alone may be inherited from an outer xdist run (pytest run by a test).
    xdist_worker = "PYTEST_XDIST_WORKER" in os.environ and sys.argv[:1] == ["-c"]
    if not xdist_worker and (
        getattr(ns, "dist", "no") not in ("no", None) or getattr(ns, "numprocesses", None)
    ):
        not_taken(early_config, NotTaken(Why.XDIST))
        return  # xdist controller: its workers record
    if sys.version_info < (3, 12) and sys.gettrace() is not None:
        not_taken(early_config, NotTaken(Why.OTHER_TRACER))
        return  # another tracer (pytest-cov, a debugger) owns sys.settrace; configure says so
    # Two verdicts need no fast path module (nor the engine it reads the data file with,
    # tens of milliseconds to import): the warm worker passes its plugins to pytest.main
    # (its standby would import them after its release), and a first run has no data.
    datafile = project_paths(early_config).datafile
    if early_config.invocation_params.plugins:
        not_taken(early_config, NotTaken(Why.PLUGINS_GIVEN))
    elif not datafile.is_file():
        not_taken(early_config, NotTaken(Why.NO_DATA, shown_path(datafile, early_config.rootpath)))
    else:
        from testmon_watch.pytest_plugin import fast_path

        if fast_path.decide(early_config, args) is not None:
            return  # nothing will run: no tracer, no conftest.py imports (see fast_path)
    from _pytest.assertion.rewrite import AssertionRewritingHook

    from testmon_watch.measure.project_files import ProjectFiles
    from testmon_watch.measure.recorder import Recorder

    recorder = Recorder(
        ProjectFiles(early_config.rootpath),
        children_dir=project_paths(early_config).children_dir,
    )
    try:
        recorder.start(extra_loader_classes=[AssertionRewritingHook])
    except RuntimeError:
        return
    early_config.stash[RECORDER_KEY] = recorder


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """End a run that has nothing to do before configuration and collection."""
    # Only `fast_path.decide` can have concluded so; a run that never loaded it did not.
    fast_path = sys.modules.get(FAST_PATH_MODULE)
    return None if fast_path is None else fast_path.end_session(config)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if _pytest_testmon_installed():
        if config.getoption("testmon", False):
            raise pytest.UsageError(
                "testmon-watch: pytest-testmon is installed too and both provide --testmon; "
                "uninstall one of them (pip uninstall pytest-testmon)"
            )
        return
    options = testmon_options(config)
    if (
        options.active
        and options.coverage_source is not None
        and config.getoption("cov_source", None)
    ):
        raise pytest.UsageError(
            "testmon-watch: --testmon-cov and pytest-cov's --cov both write .coverage; "
            "drop one of them (--testmon-cov covers deselected tests and child processes too)"
        )
    problem = baseline_spelling_problem(config) if options.active else None
    if problem is not None:
        raise pytest.UsageError(f"testmon-watch: {problem}")
    recorder = config.stash.get(RECORDER_KEY, None)
    if not options.active:
        if recorder is not None:
            recorder.stop()
        return
    from testmon_watch.pytest_plugin.planning import SelectionHooks
    from testmon_watch.pytest_plugin.results import ResultHooks
    from testmon_watch.pytest_plugin.session_state import STATE_KEY, SessionState

    state = SessionState.begin(config, options, recorder)
    config.stash[STATE_KEY] = state
    results = ResultHooks(state)
    selection = SelectionHooks(state)
    # Recorded tests go straight to the results; an xdist worker sends them on instead.
    selection.open(deliver=None if state.worker else results.receive_test)
    if state.gate is None:
        selection.select()
    pluginmanager = config.pluginmanager
    pluginmanager.register(selection, SESSION_PLUGIN)
    pluginmanager.register(results, RESULTS_PLUGIN)
    if state.controller and pluginmanager.hasplugin("xdist"):
        pluginmanager.register(XdistControllerHooks(results), XDIST_PLUGIN)


class XdistControllerHooks:
    """Hooks that exist only under pytest-xdist (pytest rejects unknown hook names)."""

    def __init__(self, results: ResultHooks) -> None:
        self.results = results

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.results.receive_worker_output(getattr(node, "workeroutput", None) or {})
