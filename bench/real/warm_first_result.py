"""Run inside a project's venv: a warm, untraced pytest, timed from an edit to its first result.

Ours, minus everything ours adds: a pytest process forked from a warm one
(pytest and every module a collection of the suite imports that is not the
project's own already imported: more than our server preloads) runs
``pytest.main`` up to a gate and waits there, as our standby does; the edit is
written, the gate opens, and the time to the first test report that is a
result (a call, or a setup that did not pass) is taken. The gate is where ours
has it for this edit: before the conftest.py files when they import the edited
module, else at the start of collection. Nothing of ours is loaded, nothing is
traced or recorded or selected: a small plugin (`Selected`) is given the node
ids of exactly the tests to run and collects them as narrowly as ours does.

Each repetition writes a body of the edited function that no earlier one wrote
(as watch_real.py's saves do). Prints one JSON object:
``{"first_ms": [...], "preloaded": N, "early_gate": bool}``.

Usage (by watch_floor.py): ``python warm_first_result.py ROOT EDIT_JSON NODEIDS_FILE REPS
-- PYTEST_ARGS...``; EDIT_JSON holds path, marker and template (fetch.EditSpec).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import random
import sys
import time
from pathlib import Path

import pytest

QUIET_OPTIONS = ["-q", "-p", "no:testmon_watch", "-p", "no:pytest-testmon", "-p", "no:randomly"]
# Preloaded plugin packages cannot be assert-rewritten: pytest warns, and a project whose
# ini turns warnings into errors would stop. Our worker passes the same filter.
QUIET_OPTIONS += ["-W", "ignore::pytest.PytestAssertRewriteWarning"]


def _is_project(module: object, root: str) -> bool:
    path = getattr(module, "__file__", None)
    return isinstance(path, str) and os.path.abspath(path).startswith(root + os.sep)


def _fork(body) -> bytes:  # type: ignore[no-untyped-def]
    """Run body(write_fd) in a forked child with its output discarded; what it wrote."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            code = body(write_fd)
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return b"".join(chunks)


def probe(root: str, edited: str, args: list[str]) -> tuple[list[str], bool]:
    """A collection of the suite in a child: the non-project modules it imports, and
    whether the edited file was imported before collection began (an early gate)."""

    class EditedLoaded:
        early = False

        @pytest.hookimpl(tryfirst=True)
        def pytest_collection(self) -> None:
            EditedLoaded.early = any(
                os.path.abspath(getattr(m, "__file__", None) or "") == edited
                for m in list(sys.modules.values())
            )

    def collect(write_fd: int) -> int:
        pytest.main(["--collect-only", *QUIET_OPTIONS, *args], plugins=[EditedLoaded()])
        names = [n for n, m in list(sys.modules.items()) if not _is_project(m, root)]
        os.write(write_fd, json.dumps([names, EditedLoaded.early]).encode())
        return 0

    names, early = json.loads(_fork(collect) or b"[[], false]")
    names = [n for n in names if n not in ("__main__", "conftest") and not n.startswith("test")]
    return names, bool(early)


class Gate:
    """Holds pytest where our standby would wait, until the parent says go."""

    def __init__(self, early: bool, ready_fd: int, go_fd: int) -> None:
        self.early, self.ready_fd, self.go_fd, self.passed = early, ready_fd, go_fd, False

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_load_initial_conftests(self):  # type: ignore[no-untyped-def]
        if self.early:
            self.wait()
        yield

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_collection(self):  # type: ignore[no-untyped-def]
        self.wait()
        yield

    def wait(self) -> None:
        if not self.passed:
            self.passed = True
            os.write(self.ready_fd, b"r")
            os.read(self.go_fd, 1)


class Selected:
    """Collects the selected tests the cheapest way a selecting plugin can: only their
    modules, in each only the top-level names that hold one, the rest deselected.

    (Node ids on the command line would be slower: pytest matches each against every
    collected node, minutes for thousands of parametrized ids.)
    """

    def __init__(self, root: str, nodeids: list[str]) -> None:
        self.root = root
        self.nodeids = set(nodeids)
        self.names: dict[str, set[str]] = {}
        for nodeid in nodeids:
            path, _, rest = nodeid.partition("::")
            self.names.setdefault(path, set()).add(rest.partition("::")[0].partition("[")[0])

    def paths(self) -> list[str]:
        return sorted(self.names)

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makeitem(self, collector: pytest.Collector, name: str) -> object:
        if type(collector) is not pytest.Module:
            return None
        rel = os.path.relpath(str(collector.path), self.root).replace(os.sep, "/")
        return None if name in self.names.get(rel, {name}) else []

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        kept = [i for i in items if i.nodeid in self.nodeids]
        dropped = [i for i in items if i.nodeid not in self.nodeids]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = kept


class FirstResult:
    """Writes the time of the first result to a pipe and ends the process there."""

    def __init__(self, write_fd: int) -> None:
        self.write_fd = write_fd

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            os.write(self.write_fd, f"{time.monotonic()}\n".encode())
            os._exit(0)


def main() -> int:
    root, edit_json, nodeids_file, reps = sys.argv[1:5]
    args = sys.argv[sys.argv.index("--") + 1 :]
    root = os.path.abspath(root)
    os.chdir(root)
    edit = json.loads(Path(edit_json).read_text())
    nodeids = [n for n in Path(nodeids_file).read_text().splitlines() if n]
    path = Path(root, edit["path"])
    names, early = probe(root, str(path), args)
    preloaded = 0
    for name in names:
        try:
            importlib.import_module(name)
            preloaded += 1
        except BaseException:  # noqa: BLE001 - not importable alone: the run imports it
            pass
    for name, module in list(sys.modules.items()):
        if _is_project(module, root):
            del sys.modules[name]  # the child imports the edited project afresh
    gc.freeze()  # as our server does before each fork

    original = path.read_text(encoding="utf-8")
    log_path = os.path.join(os.path.dirname(os.path.abspath(nodeids_file)), "pytest.log")
    first_ms: list[float] = []
    number = random.randrange(1, 100_000) * 1000 + 200_000_000
    try:
        for rep in range(int(reps)):
            ready_r, ready_w = os.pipe()
            go_r, go_w = os.pipe()

            result_r, result_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                for fd in (result_r, ready_r, go_w):
                    os.close(fd)
                log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(log, 1)
                os.dup2(log, 2)
                selected = Selected(root, nodeids)
                plugins = [Gate(early, ready_w, go_r), FirstResult(result_w), selected]
                pytest.main([*QUIET_OPTIONS, *args, *selected.paths()], plugins=plugins)
                os._exit(1)  # no result at all
            for fd in (result_w, ready_w, go_r):
                os.close(fd)
            ready = os.read(ready_r, 1)  # the child waits at its gate (b"": it ended first)
            if not ready:
                os.waitpid(pid, 0)
                tail = Path(log_path).read_text()[-3000:]
                raise SystemExit(f"pytest ended before its gate:\n{tail}")
            body = edit["template"].format(n=number + rep)
            path.write_text(original.replace(edit["marker"], body, 1), encoding="utf-8")
            started = time.monotonic()
            os.write(go_w, b"g")
            answer = os.read(result_r, 100).strip()
            os.waitpid(pid, 0)
            for fd in (ready_r, go_w, result_r):
                os.close(fd)
            if answer:
                first_ms.append((float(answer) - started) * 1000)
    finally:
        path.write_text(original, encoding="utf-8")
    print(json.dumps({"first_ms": first_ms, "preloaded": preloaded, "early_gate": early}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
