"""What the warm worker imports before runs: pytest, plugins, third-party modules, not the project.

The server imports these once so that every run's child, forked from it,
starts warm. Which third-party modules the tests need is learnt from the runs
themselves: each child writes the preload list (`wire.preload`) after pytest is
done, and the server imports what is new on it after the run and at its next
start. A module of the project is never imported here, whatever the list
says: children must import project code fresh. The list also names the
project files the run imported, for the next standby, which loads their code
ahead (worker/code_cache.py).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Collection
from importlib.metadata import entry_points
from pathlib import Path

from testmon_watch.measure.loaded import loaded_modules
from testmon_watch.measure.project_files import ProjectFiles
from testmon_watch.wire import preload as preload_wire
from testmon_watch.wire.preload import PreloadError, PreloadList

# Names never preloaded by the server, even when a run imported them: they have
# visible side effects at import (`this` prints, `antigravity` opens a browser).
NEVER_PRELOAD = frozenset({"__main__", "__mp_main__", "this", "antigravity", "conftest"})


def engine_modules() -> list[str]:
    """What every run imports anyway: pytest's built-in plugins and our recording stack."""
    from _pytest.config import default_plugins

    names = [f"_pytest.{name}" for name in default_plugins if "." not in name]
    names += [
        "coverage",
        "coverage.tracer",
        "sqlite3",
        "testmon_watch.measure.recorder",
        "testmon_watch.measure.children",
        "testmon_watch.measure.coverage_export",
        "testmon_watch.pytest_plugin.plugin",
        # Imported by pytest_configure, after the release when the gate is early (a
        # conftest.py that imports the project): milliseconds of every save, otherwise.
        "testmon_watch.pytest_plugin.planning",
        "testmon_watch.pytest_plugin.results",
        "testmon_watch.worker.streamer",
        "testmon_watch.worker.standby",
    ]
    return names


def read_preload_list(path: Path) -> PreloadList:
    """The list the last run's child saved; empty when missing, unreadable or of another version."""
    try:
        return preload_wire.decode(path.read_text(encoding="utf-8"))
    except (OSError, PreloadError):
        return PreloadList()


def preload_names(root: Path, known: Collection[str] = ()) -> list[str]:
    """Top-level names of the non-project modules this process has imported.

    Names in `known` (what the process had imported when the worker forked it, so
    nothing of the project) are taken as they are; only the rest is classified.
    """
    files = ProjectFiles(root)
    names = set()
    for name, module in loaded_modules().items():
        if "." in name or name in NEVER_PRELOAD or module is None:
            continue
        if name not in known:
            where = getattr(module, "__file__", None)
            if not where:
                path = getattr(module, "__path__", None)
                where = next(iter(path), None) if path is not None else None
            if where and files.relative(where) is not None:
                continue  # a project module: the server must never import it
        names.add(name)
    return sorted(names)


def project_code(root: Path) -> tuple[list[str], list[str]]:
    """The project's Python files this process imported: (rewritten by pytest, compiled).

    Test modules and conftest.py files come through pytest's assertion rewriting;
    the rest through Python's own loader. Each list is sorted.
    """
    files = ProjectFiles(root)
    rewritten, compiled = [], []
    for module in loaded_modules().values():
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py"):
            continue
        if files.relative(path) is None:
            continue
        loader = getattr(getattr(module, "__spec__", None), "loader", None)
        if type(loader).__name__ == "AssertionRewritingHook":
            rewritten.append(os.path.abspath(path))
        elif isinstance(loader, importlib.machinery.SourceFileLoader):
            compiled.append(os.path.abspath(path))
    return sorted(rewritten), sorted(compiled)


def write_preload_list(path: Path, root: Path, known: Collection[str] = ()) -> None:
    """Save what the server should import next time it starts, and the project code the
    next standby should load ahead (atomically, when changed)."""
    conftests = sorted(
        f
        for f in (getattr(m, "__file__", None) for m in loaded_modules().values())
        if f and os.path.basename(f) == "conftest.py"
    )
    rewritten, compiled = project_code(root)
    text = preload_wire.encode(
        PreloadList(
            tuple(preload_names(root, known)), tuple(conftests), tuple(rewritten), tuple(compiled)
        )
    )
    try:
        if path.read_text(encoding="utf-8") == text:
            return  # unchanged: no write, so no file event for a watcher to filter
    except OSError:
        pass
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a read-only tree: the worker just preloads less


class Preloader:
    """Imports third-party modules into the server, each name tried once per process."""

    def __init__(self, root: Path, list_path: Path) -> None:
        self.files = ProjectFiles(root)
        self.list_path = list_path
        self.tried: set[str] = set()

    def warm_up(self) -> tuple[list[str], PreloadList]:
        """Import pytest, its plugins, the engine and the preload list; returns failures, list."""
        import pytest  # noqa: F401  (the point: imported once, inherited by every child)

        failures: list[str] = []
        for ep in entry_points(group="pytest11"):
            try:
                ep.load()
            except BaseException as exc:  # noqa: BLE001 - a broken plugin must not stop the worker
                failures.append(f"{ep.name} ({type(exc).__name__}: {exc})")
        failures += self.import_third_party(engine_modules())
        saved = read_preload_list(self.list_path)
        failures += self.import_third_party(saved.modules)
        return failures, saved

    def catch_up(self) -> tuple[list[str], PreloadList]:
        """After a run: import what its tests needed that this process lacks."""
        saved = read_preload_list(self.list_path)
        failures: list[str] = []
        if any(m not in sys.modules and m not in self.tried for m in saved.modules):
            failures = self.import_third_party(saved.modules)
        return failures, saved

    def import_third_party(self, names: Collection[str]) -> list[str]:
        """Import the non-project modules among `names`; returns what failed."""
        failures = []
        for name in names:
            if name in sys.modules or name in self.tried:
                continue
            self.tried.add(name)  # tried once per process, whatever happens
            try:
                spec = importlib.util.find_spec(name)
            except BaseException:  # noqa: BLE001 - it imports the parents, which may raise anything
                continue
            if spec is None:
                continue  # uninstalled since: nothing to warm
            origin = spec.origin or next(iter(spec.submodule_search_locations or ()), None)
            if origin and self.files.relative(origin) is not None:
                continue  # the project's own module (or one shadowing a package): never here
            try:
                importlib.import_module(name)
            except BaseException as exc:  # noqa: BLE001 - even SystemExit: just not preloaded
                failures.append(f"{name} ({type(exc).__name__})")
        for name in self.project_modules():
            # Imported as a side effect of a third-party import: drop it so children
            # import it fresh (they would see a stale copy otherwise).
            sys.modules.pop(name, None)
        return failures

    def project_modules(self) -> list[str]:
        """Names of the project's modules this process has imported (there must be none)."""
        found = []
        for name, module in loaded_modules().items():
            path = getattr(module, "__file__", None)
            if isinstance(path, str) and self.files.relative(path) is not None:
                found.append(name)
        return sorted(found)
