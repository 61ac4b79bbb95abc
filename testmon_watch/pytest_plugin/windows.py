"""Trace only the doors into project code while pytest runs a test (settrace tracers).

Below Python 3.12 a trace function slows down every call and line in the
thread, pytest's own included, and pytest's per-test work (hook calls,
reports, the terminal) is most of what a run executes. So while pytest runs
one test (`pytest_runtest_protocol`), while it collects (`pytest_collection`,
and each test module or class when something else collects), and during
`pytest_sessionstart` and `pytest_sessionfinish` (pytest scanning every
plugin for fixtures; the summary), the recorder is quiet, and tracing goes
back on only where project code can run:

* the test's setup, call and teardown (fixtures, the test function, an item's
  own `runtest`, finalizers): innermost wrappers of those three hooks;
* every hook implementation defined in a project file (conftest.py, a plugin
  of the project), whichever hook and whenever called: its function is
  wrapped when pytest registers it;
* `pytest_generate_tests`, including a test module's or class's own (pytest
  passes those as extra implementations) and `@parametrize`'s `ids=`;
* the body of a project module imported meanwhile (the recorder's import hook).

* a collector class defined in the project (a conftest's own Module
  subclass, a custom file collector): its collection is one window.

What is left untraced in between is pytest and other installed plugins, plus
project code reached in other ways: `__repr__` of a project object for a
failure report, a project Item's `reportinfo`, a `__del__` run by the garbage
collector. Such code changes report text, not outcomes. Project code that an
installed plugin calls from its own sessionstart, collection or sessionfinish
hook would be missed too; plugins do that work in `pytest_configure` or in
fixtures (pytest-django sets Django up in `pytest_configure` and
`pytest_load_initial_conftests`), which stay traced.

With sys.monitoring (3.12+) untraced code costs nothing and the recorder
ignores all of this.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Generator
from typing import Any

import pytest

from testmon_watch.measure.recorder import Recorder

# Marks a hook function we wrapped, so that it is never wrapped twice.
_WRAPPED = "__testmon_watch_window__"


class TracingWindows:
    """The pytest plugin that keeps the recorder quiet during tests, with windows."""

    def __init__(self, pluginmanager: pytest.PytestPluginManager, recorder: Recorder) -> None:
        self.recorder = recorder
        self.pluginmanager = pluginmanager
        # Registering this plugin replays pytest_plugin_registered for each of these;
        # they are wrapped here, in one pass over the hooks instead of one per plugin.
        self._replayed = {id(plugin) for plugin in pluginmanager.get_plugins()}
        for caller in list(vars(pluginmanager.hook).values()):
            get_hookimpls = getattr(caller, "get_hookimpls", None)
            if get_hookimpls is not None:
                self._wrap_impls(get_hookimpls(), None)

    @classmethod
    def register(
        cls, pluginmanager: pytest.PytestPluginManager, recorder: Recorder, name: str
    ) -> TracingWindows:
        windows = cls(pluginmanager, recorder)
        pluginmanager.register(windows, name)
        windows._replayed.clear()  # the replay is over: every later registration is new
        return windows

    # -- project hook implementations ---------------------------------------------

    @pytest.hookimpl
    def pytest_plugin_registered(self, plugin: object) -> None:
        if id(plugin) in self._replayed:
            self._replayed.discard(id(plugin))  # wrapped in __init__; a later one is new
            return
        # conftest.py files below the rootdir register during collection.
        self._wrap_project_hooks(plugin)

    def _wrap_project_hooks(self, plugin: object) -> None:
        if plugin is self:
            return
        try:
            callers = self.pluginmanager.get_hookcallers(plugin) or []
        except ValueError:
            return  # unregistered meanwhile
        for caller in callers:
            self._wrap_impls(caller.get_hookimpls(), plugin)

    def _wrap_impls(self, impls: list[Any], plugin: object | None) -> None:
        """Window the project's implementations among `impls` (of `plugin` only, if given)."""
        for impl in impls:
            if plugin is not None and impl.plugin is not plugin:
                continue
            if impl.plugin is not self and self._is_project_function(impl.function):
                # Final in pluggy's annotations, a plain attribute at run time; the
                # hook calls read it on every call.
                impl.function = windowed(impl.function, self.recorder)

    def _is_project_function(self, function: Callable[..., Any]) -> bool:
        if getattr(function, _WRAPPED, False):
            return False
        code = getattr(inspect.unwrap(function), "__code__", None)
        if code is None:
            return False
        return self.recorder.files.is_project(code.co_filename)

    # -- the two kinds of stretch: quiet, and a window -------------------------------
    #
    # Both are hook wrappers that delegate to these with `yield from`: the pair of
    # tracer calls happens in one frame, as the recorder requires.

    def _quiet(self, quiet: bool = True) -> Generator[None, Any, Any]:
        token = self.recorder.quiet() if quiet else None
        try:
            return (yield)
        finally:
            self.recorder.unquiet(token)

    def _window(self) -> Generator[None, Any, Any]:
        token = self.recorder.open_window()
        try:
            return (yield)
        finally:
            self.recorder.close_window(token)

    # -- session start and end: pytest and plugins only, quiet -----------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> Generator[None, Any, Any]:
        return (yield from self._quiet())

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, Any, Any]:
        return (yield from self._quiet())

    # -- collection: quiet, with its doors as windows ---------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> Generator[None, Any, Any]:
        return (yield from self._quiet())

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, Any]:
        if self._is_project_class(type(collector)):
            return (yield from self._window())
        # Quiet already inside pytest_collection; this covers collecting outside it.
        quiet = isinstance(collector, (pytest.Module, pytest.Class))
        return (yield from self._quiet(quiet))

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> Generator[None, Any, Any]:
        # Also the module's or class's own pytest_generate_tests (pytest passes
        # those as extra implementations of this hook) and @parametrize's ids=.
        return (yield from self._window())

    def _is_project_class(self, cls: type) -> bool:
        module = sys.modules.get(cls.__module__)
        filename = getattr(module, "__file__", None)
        return filename is not None and self.recorder.files.is_project(filename)

    # -- a test: quiet, with its three phases as windows ----------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._quiet())

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._window())

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._window())

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._window())


def windowed(function: Callable[..., Any], recorder: Recorder) -> Callable[..., Any]:
    """`function` (a hook implementation), traced whenever it runs.

    A generator (a hook wrapper) runs in pieces, with pytest and other hooks
    in between: each piece gets its own window.
    """

    def in_window(step: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # Opened and closed in this one frame, as the recorder requires.
        token = recorder.open_window()
        try:
            return step(*args, **kwargs)
        finally:
            recorder.close_window(token)

    if inspect.isgeneratorfunction(function):

        @functools.wraps(function)
        def generator_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            inner = function(*args, **kwargs)  # creating a generator runs none of it
            try:
                value = in_window(next, inner)
            except StopIteration:
                # pluggy's own words, but naming the project's hook rather than us.
                code = inspect.unwrap(function).__code__
                raise RuntimeError(
                    f"wrap_controller at {code.co_name!r} {code.co_filename}:"
                    f"{code.co_firstlineno} did not yield"
                ) from None
            while True:
                try:
                    sent = yield value
                except GeneratorExit:
                    in_window(inner.close)
                    raise
                except BaseException as exc:  # noqa: BLE001 - handed to the wrapped generator
                    step, arg = inner.throw, exc
                else:
                    step, arg = inner.send, sent
                try:
                    value = in_window(step, arg)
                except StopIteration as stop:
                    return stop.value

        setattr(generator_wrapper, _WRAPPED, True)
        return generator_wrapper

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return in_window(function, *args, **kwargs)

    setattr(wrapper, _WRAPPED, True)
    return wrapper
