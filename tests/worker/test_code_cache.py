"""The warm worker compiles project modules, and rewrites test modules, once per content."""

from __future__ import annotations

import marshal
import os
from pathlib import Path
from typing import Any

import pytest
from worker_helpers import Events, make_client, run_end

from testmon_watch.core.cache_home import CACHE_ENV
from testmon_watch.core.outcomes import Outcome
from testmon_watch.wire.worker_protocol import TestFinished
from testmon_watch.worker.client import WorkerClient
from testmon_watch.worker.code_cache import CodeCache, install_rewrite


def run(client: WorkerClient, events: Events, **fields: Any) -> list[object]:
    return list(events.until_finished(client.run(**fields)))


def entries(cache: Path) -> dict[str, int]:
    """Entry file -> inode: a rewrite stores a new file, a reuse leaves it alone."""
    return {p.name: p.stat().st_ino for p in cache.glob("code/??/*")}


def bytecode_on_client(project: Path, events: Events, cache: Path) -> WorkerClient:
    """A started worker that writes bytecode (whatever the environment says), caching in `cache`."""
    client: WorkerClient = make_client(project, events, env={CACHE_ENV: str(cache)})
    assert client.env is not None
    client.env.pop("PYTHONDONTWRITEBYTECODE", None)
    client.start()
    return client


def outcomes(stream: list[object]) -> dict[str, Outcome]:
    return {m.nodeid: m.outcome for m in stream if isinstance(m, TestFinished)}


def test_rewritten_modules_are_reused_and_never_stale(
    project: Path, events: Events, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    env = {"PYTHONDONTWRITEBYTECODE": "1", CACHE_ENV: str(cache)}
    client = make_client(project, events, env=env)
    client.start()
    try:
        first = run(client, events, mode="all")
        assert run_end(first).exitstatus == 0
        stored = entries(cache)
        assert stored  # test_calc.py, calc.py (and the modules of pytest plugins, rewritten too)

        again = run(client, events, mode="all")
        assert run_end(again).exitstatus == 0
        assert entries(cache) == stored  # read back, not rewritten

        # Same size, same second: only the content tells the versions apart.
        path = project / "test_calc.py"
        path.write_text(path.read_text().replace("add(1, 2) == 3", "add(1, 2) == 4"))
        edited = run(client, events, mode="all")
        assert outcomes(edited)["test_calc.py::test_add"] is Outcome.FAILED
        assert "assert 3 == 4" in next(
            m.longrepr for m in edited if isinstance(m, TestFinished) and m.longrepr
        )  # pytest's rewritten assert message: the cached code is still rewritten code
        assert len(entries(cache)) == len(stored) + 1  # the edited module only
    finally:
        client.stop()
    assert not list(project.rglob("__pycache__"))  # nothing written into the project


def test_with_bytecode_on_pytest_keeps_its_own_cache(
    project: Path, events: Events, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    client = bytecode_on_client(project, events, cache)
    try:
        assert run_end(run(client, events, mode="all")).exitstatus == 0
    finally:
        client.stop()
    assert len(entries(cache)) == 1  # calc.py; test_calc.py is pytest's to cache:
    assert list((project / "__pycache__").glob("test_calc.*pytest*.pyc"))


def test_digest_covers_path_options_and_source(tmp_path: Path) -> None:
    cache = CodeCache(tmp_path, "9.0")
    base = cache.digest("/p/test_a.py", b"x = 1\n", "pass_hook=False")
    assert cache.digest("/p/test_b.py", b"x = 1\n", "pass_hook=False") != base
    assert cache.digest("/p/test_a.py", b"x = 2\n", "pass_hook=False") != base
    assert cache.digest("/p/test_a.py", b"x = 1\n", "pass_hook=True") != base
    assert CodeCache(tmp_path, "9.1").digest("/p/test_a.py", b"x = 1\n", "pass_hook=False") != base


def test_a_corrupt_entry_is_a_miss(tmp_path: Path) -> None:
    cache = CodeCache(tmp_path, "9.0")
    digest = cache.digest("/p/t.py", b"", "")
    cache.store(digest, compile("x = 1", "/p/t.py", "exec"))
    assert cache.load(digest) is not None
    entry = next(tmp_path.glob("??/*"))
    entry.write_bytes(b"\x00garbage")
    assert cache.load(digest) is None
    entry.write_bytes(marshal.dumps(42))  # valid marshal, not code
    assert cache.load(digest) is None


def test_prune_keeps_the_newest(tmp_path: Path) -> None:

    cache = CodeCache(tmp_path, "9.0")
    for i in range(5):
        digest = cache.digest("/p/t.py", str(i).encode(), "")
        cache.store(digest, compile(f"x = {i}", "/p/t.py", "exec"))
        entry = tmp_path / digest[:2] / digest[2:]
        os.utime(entry, (1000 + i, 1000 + i))
    newest = {cache.digest("/p/t.py", str(i).encode(), "")[2:] for i in (3, 4)}
    cache.prune(keep=2)
    assert {p.name for p in tmp_path.glob("??/*")} == newest


def test_install_wraps_pytests_rewrite_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import _pytest.assertion.rewrite as rewrite_module

    monkeypatch.setattr(rewrite_module, "_rewrite_test", rewrite_module._rewrite_test)
    cache = CodeCache(tmp_path, "9.0")
    assert install_rewrite(cache)
    assert not install_rewrite(cache)  # already in front


def test_a_project_module_is_never_run_stale(project: Path, events: Events, tmp_path: Path) -> None:
    # Python's own __pycache__ entries are checked by timestamp and size: an edit in
    # the same second that keeps the size would run the old code. Bytecode on here.
    cache = tmp_path / "cache"
    client = bytecode_on_client(project, events, cache)
    try:
        first = run(client, events, mode="all")
        assert outcomes(first)["test_calc.py::test_mul"] is Outcome.PASSED
        calc = project / "calc.py"
        stat = calc.stat()
        calc.write_text(calc.read_text().replace("a * b", "a - b"))  # same size
        os.utime(calc, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same mtime
        again = run(client, events, mode="all")
        assert outcomes(again)["test_calc.py::test_mul"] is Outcome.FAILED
    finally:
        client.stop()


# A worker process with the code caches on, counting what its loader compiles.
COUNTING_COMPILES = """
import importlib.machinery, json, sys
from pathlib import Path
from testmon_watch.worker import code_cache

root, cache_dir = Path(sys.argv[1]), Path(sys.argv[2])
cache = code_cache.use_code_caches(root, cache_dir)
compiled = []
original = importlib.machinery.SourceFileLoader.source_to_code
def counting(self, data, path, **kw):
    compiled.append(Path(path).name)
    return original(self, data, path, **kw)
importlib.machinery.SourceFileLoader.source_to_code = counting
sys.path.insert(0, str(root))
"""

COMPILE_AHEAD_SCRIPT = (
    COUNTING_COMPILES
    + """
(root / "ahead.py").write_text("VALUE = 1\\n")
code_cache.compile_ahead(str(root / "ahead.py"))
# Written again after the compile, as the rest of a save: other content, compiled anew.
(root / "later.py").write_text("VALUE = 2\\n")
code_cache.compile_ahead(str(root / "later.py"))
(root / "later.py").write_text("VALUE = 3\\n")
code_cache.compile_ahead(str(root / "missing.py"))  # nothing to read: nothing happens
compiled_ahead = list(compiled)
import ahead, later
print(json.dumps({"ahead": compiled_ahead, "at_import": compiled[len(compiled_ahead):],
                  "values": [ahead.VALUE, later.VALUE], "hits": cache.hits}))
"""
)


def run_script(text: str, root: Path, cache: Path) -> dict[str, Any]:
    """Run `text` in a fresh interpreter without bytecode; what it printed, as JSON."""
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", text, str(root), str(cache)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_a_file_compiled_ahead_is_not_compiled_at_its_import(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    found = run_script(COMPILE_AHEAD_SCRIPT, root, tmp_path / "cache")
    assert found["ahead"] == ["ahead.py", "later.py"]
    assert found["at_import"] == ["later.py"]  # its content changed after the compile
    assert found["values"] == [1, 3]
    assert found["hits"] == 1


LOAD_AHEAD_SCRIPT = """
import json, sys
from pathlib import Path
import pytest
from testmon_watch.worker import code_cache

root, cache_dir, edit = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
cache = code_cache.use_code_caches(root, cache_dir)
found = {}


class Ahead:
    # Where the standby's gate waits: configured, nothing of the project imported.
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session):
        found["loaded"] = code_cache.load_ahead(
            [str(root / "test_a.py")], [str(root / "mod.py")], session.config, lambda: False
        )
        if edit == "test":  # written after its code was loaded: the run must see this
            path = root / "test_a.py"
            path.write_text(path.read_text().replace("== 2", "== 3  # edited"))
        if edit == "module":
            path = root / "mod.py"
            path.write_text(path.read_text().replace("TWO = 2", "TWO = 3  # edited"))

    def pytest_sessionfinish(self, session):
        found["memory_hits"] = cache.memory_hits


sys.path.insert(0, str(root))
found["exit"] = int(pytest.main(["-q", "-p", "no:cacheprovider", str(root)], plugins=[Ahead()]))
print("RESULT " + json.dumps(found))
"""


TEST_A = "from mod import TWO\n\n\ndef test_two():\n    assert TWO == 2\n"


@pytest.mark.parametrize("bytecode", [True, False], ids=["pytest-pyc", "no-bytecode"])
def test_code_loaded_ahead_is_used_until_its_file_changes(tmp_path: Path, bytecode: bool) -> None:
    """A waiting standby loads the last run's project code into memory (load_ahead); the run
    takes it from there, and never when the file was written after it was loaded."""
    import json
    import subprocess
    import sys

    root = tmp_path / "project"
    root.mkdir()
    (root / "mod.py").write_text("TWO = 2\n")
    (root / "test_a.py").write_text(TEST_A)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"

    def run(edit: str) -> dict[str, int]:
        out = subprocess.run(
            [sys.executable, "-c", LOAD_AHEAD_SCRIPT, str(root), str(tmp_path / "cache"), edit],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=root,
        )
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        assert line is not None, out.stdout + out.stderr
        result: dict[str, int] = json.loads(line[len("RESULT ") :])
        return result

    # Nothing cached yet: mod.py is compiled ahead; test_a.py is pytest's to rewrite.
    first = run("")
    assert first == {"loaded": 2, "memory_hits": 1, "exit": 0}
    again = run("")
    assert again == {"loaded": 2, "memory_hits": 2, "exit": 0}  # both from memory
    edited_module = run("module")
    assert edited_module["exit"] == 1  # TWO is 3 now
    assert edited_module["memory_hits"] == 1  # test_a.py only
    (root / "mod.py").write_text("TWO = 2\n")
    edited_test = run("test")
    assert edited_test["exit"] == 1  # the edited assert ran, not the code loaded ahead
    assert edited_test["memory_hits"] == 1  # mod.py only
    assert bytecode == bool(list(root.glob("__pycache__/test_a.*pytest*.pyc")))
