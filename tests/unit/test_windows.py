"""`windowed`: a project hook implementation keeps pluggy's behaviour when wrapped in a window."""

from __future__ import annotations

from typing import Any

import pluggy
import pytest

from testmon_watch.pytest_plugin.windows import windowed

hookspec = pluggy.HookspecMarker("sample")
hookimpl = pluggy.HookimplMarker("sample")


class Spec:
    @hookspec
    def compute(self, x: int) -> list[int]:  # type: ignore[empty-body]
        ...


class WindowLog:
    """Counts windows; every window must be closed, never nested by `windowed` itself."""

    def __init__(self) -> None:
        self.open = 0
        self.opened = 0

    def open_window(self) -> object:
        self.open += 1
        self.opened += 1
        return self.opened

    def close_window(self, token: object) -> None:
        assert token is not None
        self.open -= 1


def manager(*plugins: object, wrap: bool, log: WindowLog) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("sample")
    pm.add_hookspecs(Spec)
    for plugin in plugins:
        pm.register(plugin)
        if wrap:
            for impl in pm.hook.compute.get_hookimpls():
                if impl.plugin is plugin:
                    # misc: Final in pluggy's annotations, as in windows.py; arg-type: the log
                    # stands in for a Recorder (windowed uses only its two window methods).
                    impl.function = windowed(impl.function, log)  # type: ignore[misc, arg-type]
    return pm


class Plain:
    @hookimpl
    def compute(self, x: int) -> int:
        return x + 1


class OldStyleWrapper:
    @hookimpl(hookwrapper=True)
    def compute(self, x: int) -> Any:
        outcome = yield
        outcome.force_result([r * 10 for r in outcome.get_result()])


class NewStyleWrapper:
    @hookimpl(wrapper=True)
    def compute(self, x: int) -> Any:
        try:
            result = yield
        except ZeroDivisionError:
            return [-1]
        return [*result, x]


class Raises:
    @hookimpl
    def compute(self, x: int) -> int:
        return 1 // (x - x)


class NeverYields:
    @hookimpl(wrapper=True)
    def compute(self, x: int) -> Any:
        if x >= 0:
            return [0]
        yield  # pragma: no cover - a generator that never gets here


@pytest.mark.parametrize(
    "plugins",
    [
        [Plain],
        [Plain, OldStyleWrapper],
        [Plain, NewStyleWrapper],
        [Raises, NewStyleWrapper],
        [Plain, OldStyleWrapper, NewStyleWrapper],
    ],
    ids=["plain", "old-wrapper", "new-wrapper", "exception-into-wrapper", "both"],
)
def test_wrapped_hooks_give_the_same_results(plugins: list[type]) -> None:
    log = WindowLog()
    bare = manager(*(p() for p in plugins), wrap=False, log=log)
    wrapped = manager(*(p() for p in plugins), wrap=True, log=log)
    assert wrapped.hook.compute(x=2) == bare.hook.compute(x=2)
    assert log.opened > 0
    assert log.open == 0


@pytest.mark.filterwarnings("ignore::pluggy.PluggyTeardownRaisedWarning")
def test_exceptions_pass_through_a_wrapped_hook_unchanged() -> None:
    log = WindowLog()
    pm = manager(Raises(), OldStyleWrapper(), wrap=True, log=log)
    with pytest.raises(ZeroDivisionError):
        pm.hook.compute(x=1)
    assert log.open == 0


def test_a_wrapper_that_never_yields_is_still_reported_by_pluggy() -> None:
    log = WindowLog()
    bare = manager(Plain(), NeverYields(), wrap=False, log=log)
    wrapped = manager(Plain(), NeverYields(), wrap=True, log=log)
    with pytest.raises(RuntimeError, match="did not yield") as bare_error:
        bare.hook.compute(x=1)
    with pytest.raises(RuntimeError, match="did not yield") as wrapped_error:
        wrapped.hook.compute(x=1)
    assert str(wrapped_error.value) == str(bare_error.value)  # names the project's hook
    assert log.open == 0


# -- TracingWindows: which implementations get a window --------------------------------


class ProjectFilesStub:
    """Project code: this test file only (the plugins below are defined here)."""

    def is_project(self, filename: str) -> bool:
        return filename == __file__


class RecorderStub(WindowLog):
    files = ProjectFilesStub()


class HeaderBefore:
    @pytest.hookimpl
    def pytest_report_header(self) -> str:
        return "before"


class HeaderAfter:
    @pytest.hookimpl
    def pytest_report_header(self) -> str:
        return "after"


def test_each_project_hook_gets_one_window_whether_registered_before_or_after() -> None:
    from _pytest.config import PytestPluginManager

    from testmon_watch.pytest_plugin.windows import _WRAPPED, TracingWindows

    pm = PytestPluginManager()
    before = HeaderBefore()
    pm.register(before, "before")
    recorder = RecorderStub()
    TracingWindows.register(pm, recorder, "windows")  # type: ignore[arg-type]
    after = HeaderAfter()
    pm.register(after, "after")

    header = pm.hook.pytest_report_header
    assert sorted(header(config=None, start_path=None, startdir=None)) == [
        "after",
        "before",
    ]
    assert recorder.opened == 2  # one window per project implementation, none nested
    assert recorder.open == 0
    for plugin in (before, after):
        (impl,) = [i for i in pm.hook.pytest_report_header.get_hookimpls() if i.plugin is plugin]
        assert getattr(impl.function, _WRAPPED, False)
        inner = getattr(impl.function, "__wrapped__", None)
        assert inner is not None
        assert not getattr(inner, _WRAPPED, False)  # wrapped once
    # pytest's own implementations (not project code) are left alone.
    others = [
        i for i in pm.hook.pytest_report_header.get_hookimpls() if i.plugin not in (before, after)
    ]
    assert all(not getattr(i.function, _WRAPPED, False) for i in others)
