"""The multiprocessing patches go in when multiprocessing loads, not before.

Each check runs in a fresh interpreter: whether `multiprocessing` is loaded
is process-wide state that this test process has long settled.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(script: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_install_does_not_import_multiprocessing_and_patches_it_on_import() -> None:
    out = _run(
        """
        import sys
        from testmon_watch.measure import children
        assert "multiprocessing" not in sys.modules
        children.install_pool_hook()
        print("loaded-early" if "multiprocessing.pool" in sys.modules else "not-loaded")
        import multiprocessing.pool
        from multiprocessing.process import BaseProcess
        print(multiprocessing.pool.worker is children._pool_worker,
              BaseProcess._bootstrap is children._bootstrap,
              any(isinstance(f, children._PatchOnImport) for f in sys.meta_path))
        import concurrent.futures.process
        print(concurrent.futures.process._process_worker is children._executor_worker,
              any(isinstance(f, children._PatchOnImport) for f in sys.meta_path))
        """
    )
    # The finder stays until ProcessPoolExecutor's module is patched too.
    assert out.splitlines() == ["not-loaded", "True True True", "True False"]


def test_install_patches_at_once_when_multiprocessing_is_loaded() -> None:
    out = _run(
        """
        import sys
        import concurrent.futures.process
        import multiprocessing.pool
        from multiprocessing.process import BaseProcess
        from testmon_watch.measure import children
        children.install_pool_hook()
        print(multiprocessing.pool.worker is children._pool_worker,
              BaseProcess._bootstrap is children._bootstrap,
              concurrent.futures.process._process_worker is children._executor_worker,
              any(isinstance(f, children._PatchOnImport) for f in sys.meta_path))
        """
    )
    assert out == "True True True False"


def test_process_loaded_without_pool_patches_one_now_and_the_other_on_import() -> None:
    out = _run(
        """
        import sys
        import multiprocessing  # loads multiprocessing.process, not .pool
        from multiprocessing.process import BaseProcess
        from testmon_watch.measure import children
        children.install_pool_hook()
        before = (BaseProcess._bootstrap is children._bootstrap,
                  "multiprocessing.pool" in sys.modules)
        import multiprocessing.pool
        print(before, multiprocessing.pool.worker is children._pool_worker)
        """
    )
    assert out == "(True, False) True"
