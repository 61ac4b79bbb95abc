"""Import watcher: enter/exit around project module bodies, real imports."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import itertools
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from testmon_watch.measure.imports import ImportWatcher

_counter = itertools.count()


class Recorder:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.events: list[tuple[str, str]] = []

    def is_project_file(self, path: str) -> bool:
        return path.startswith(str(self.root))

    def on_enter(self, path: str) -> None:
        self.events.append(("enter", self.short(path)))

    def on_exit(self, path: str) -> None:
        self.events.append(("exit", self.short(path)))

    def short(self, path: str) -> str:
        return Path(path).relative_to(self.root).as_posix()


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    project = tmp_path / "proj"
    project.mkdir()
    sys.path.insert(0, str(project))
    before = set(sys.modules)
    try:
        yield project
    finally:
        sys.path.remove(str(project))
        for name in set(sys.modules) - before:
            del sys.modules[name]


@pytest.fixture
def recorder(root: Path) -> Recorder:
    return Recorder(root)


@pytest.fixture
def watcher(recorder: Recorder) -> Iterator[ImportWatcher]:
    watcher = ImportWatcher(recorder.is_project_file, recorder.on_enter, recorder.on_exit)
    try:
        yield watcher
    finally:
        watcher.uninstall()


def write(root: Path, relpath: str, source: str) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip("\n"))
    return path


def unique(prefix: str) -> str:
    return f"{prefix}_{next(_counter)}"


def test_package_importing_a_submodule_nests(
    root: Path, recorder: Recorder, watcher: ImportWatcher
) -> None:
    pkg = unique("pkg")
    write(root, f"{pkg}/__init__.py", "from . import sub\nVALUE = sub.X + 1\n")
    write(root, f"{pkg}/sub.py", "X = 41\n")
    watcher.install()
    module = importlib.import_module(pkg)
    assert module.VALUE == 42
    assert recorder.events == [
        ("enter", f"{pkg}/__init__.py"),
        ("enter", f"{pkg}/sub.py"),
        ("exit", f"{pkg}/sub.py"),
        ("exit", f"{pkg}/__init__.py"),
    ]


def test_module_raising_at_import_still_exits(
    root: Path, recorder: Recorder, watcher: ImportWatcher
) -> None:
    name = unique("broken")
    write(root, f"{name}.py", "raise LookupError('at import')\n")
    watcher.install()
    with pytest.raises(LookupError, match="at import"):
        importlib.import_module(name)
    assert recorder.events == [("enter", f"{name}.py"), ("exit", f"{name}.py")]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 re-raises the saved traceback")
def test_an_error_at_import_carries_no_frame_of_ours(
    root: Path, recorder: Recorder, watcher: ImportWatcher
) -> None:
    outer, broken = unique("outer"), unique("broken")
    write(root, f"{outer}.py", f"import {broken}\n")
    write(root, f"{broken}.py", "raise LookupError('at import')\n")
    watcher.install()
    with pytest.raises(LookupError) as excinfo:
        importlib.import_module(outer)
    files = [entry.frame.code.raw.co_filename for entry in excinfo.traceback]
    assert not [f for f in files if "testmon_watch" in f]
    # CPython trimmed the importlib frames of the `import` statement as without us.
    assert [Path(f).name for f in files[-2:]] == [f"{outer}.py", f"{broken}.py"]
    assert recorder.events[-1] == ("exit", f"{outer}.py")


def test_non_project_modules_are_not_reported(
    tmp_path: Path, root: Path, recorder: Recorder, watcher: ImportWatcher
) -> None:
    outside = tmp_path / "site"
    name = unique("thirdparty")
    write(outside, f"{name}.py", "Y = 1\n")
    sys.path.insert(0, str(outside))
    try:
        watcher.install()
        importlib.import_module(name)
    finally:
        sys.path.remove(str(outside))
    assert recorder.events == []


def test_install_is_idempotent(root: Path, recorder: Recorder, watcher: ImportWatcher) -> None:
    name = unique("mod")
    write(root, f"{name}.py", "Z = 1\n")
    watcher.install()
    watcher.install()
    importlib.import_module(name)
    assert recorder.events == [("enter", f"{name}.py"), ("exit", f"{name}.py")]


def test_uninstall_restores(root: Path, recorder: Recorder, watcher: ImportWatcher) -> None:
    loader = importlib.machinery.SourceFileLoader
    original = loader.exec_module
    had_own = "exec_module" in loader.__dict__
    watcher.install()
    assert loader.exec_module is not original
    watcher.uninstall()
    assert loader.exec_module is original
    assert ("exec_module" in loader.__dict__) == had_own
    name = unique("after")
    write(root, f"{name}.py", "Z = 1\n")
    importlib.import_module(name)
    assert recorder.events == []


class TinyLoader:
    """A loader that is not a SourceFileLoader, like pytest's rewriting hook."""

    def __init__(self, path: str) -> None:
        self.path = path

    def create_module(self, spec: object) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        source = Path(self.path).read_text()
        exec(compile(source, self.path, "exec"), module.__dict__)


def load_with(loader_class: type, path: Path) -> ModuleType:
    name = unique(path.stem)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader_class(str(path)))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_extra_loader_class(root: Path, recorder: Recorder, watcher: ImportWatcher) -> None:
    helper = unique("helper")
    write(root, f"{helper}.py", "H = 2\n")
    path = write(root, "test_thing.py", f"import {helper}\nT = {helper}.H * 2\n")
    watcher.install(extra_loader_classes=[TinyLoader])
    assert load_with(TinyLoader, path).T == 4
    assert recorder.events == [
        ("enter", "test_thing.py"),
        ("enter", f"{helper}.py"),
        ("exit", f"{helper}.py"),
        ("exit", "test_thing.py"),
    ]
    watcher.uninstall()
    assert "exec_module" in TinyLoader.__dict__
    assert TinyLoader.exec_module.__qualname__ == "TinyLoader.exec_module"
    recorder.events.clear()
    load_with(TinyLoader, path)
    assert recorder.events == []


class ChainedLoader(importlib.machinery.SourceFileLoader):
    """Overrides exec_module and calls super(): two wrappers, one module."""

    def exec_module(self, module: ModuleType) -> None:
        super().exec_module(module)


class PlainSubclassLoader(importlib.machinery.SourceFileLoader):
    """Inherits exec_module from SourceFileLoader."""


@pytest.mark.parametrize("loader_class", [ChainedLoader, PlainSubclassLoader])
def test_subclass_of_source_loader_enters_once(
    root: Path, recorder: Recorder, watcher: ImportWatcher, loader_class: type
) -> None:
    path = write(root, "sub_loaded.py", "S = 1\n")
    watcher.install(extra_loader_classes=[loader_class])
    name = unique("sub_loaded")
    spec = importlib.util.spec_from_file_location(name, path, loader=loader_class(name, str(path)))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert recorder.events == [("enter", "sub_loaded.py"), ("exit", "sub_loaded.py")]
    watcher.uninstall()
    assert "exec_module" not in PlainSubclassLoader.__dict__
