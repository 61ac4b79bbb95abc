"""Virtualenvs for the watch-loop benchmark, built on bench/venvs.py.

* ``ours``: bench/venvs.py's ``ours`` venv (``pip install`` of the repo,
  pinned pytest) plus ``torch==2.13.0`` (a local wheel), installed on top
  whenever torch is missing (venvs.py rebuilds ``ours`` when the package
  changes, which drops torch).
* ``ptw``: the way users watch today: pinned pytest, pytest-testmon 2.2.0,
  pytest-watcher 0.6.3 with ``watchdog<6`` (0.6.3 never reruns with watchdog 7)
  and ``torch==2.13.0``. Reused while its stamp matches.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import venvs
from venvs import COVERAGE_PIN, LOG_DIR, PYTEST_PIN, TESTMON_PIN, VENV_DIR, Venv, VenvError

TORCH_PIN = "torch==2.13.0"  # exactly this version: it comes from a local wheel
PTW_PIN = "pytest-watcher==0.6.3"
WATCHDOG_PIN = "watchdog<6"  # pytest-watcher 0.6.3 does not rerun with watchdog 7
PTW_ARGS = [PYTEST_PIN, TESTMON_PIN, PTW_PIN, WATCHDOG_PIN, TORCH_PIN]


def _has(py: Path, module: str) -> bool:
    """True when ``module`` imports in the interpreter ``py``."""
    proc = subprocess.run(
        [str(py), "-c", f"import {module}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return proc.returncode == 0


def _pip(py: Path, args: list[str], log: Path, constraints: Path) -> None:
    venvs._run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-c",
            str(constraints),
            *args,
        ],
        log,
    )


def ensure_ours() -> Venv:
    """The ``ours`` venv of bench/venvs.py, with torch and the watch-loop deps importable."""
    venv = venvs.ensure("ours")
    root = venv.python.parent.parent
    log = LOG_DIR / "venv-ours-watch.log"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    constraints = root / "constraints.txt"
    if not constraints.exists():
        constraints.write_text(f"{PYTEST_PIN}\n{COVERAGE_PIN}\n")
    if not _has(venv.python, "watchdog") or not _has(venv.python, "pathspec"):
        # The venv predates the watch-loop dependencies but its stamp still matched.
        print("  venv ours: installing the watch-loop dependencies ...", flush=True)
        _pip(venv.python, [str(venvs.REPO_ROOT), PYTEST_PIN], log, constraints)
    if not _has(venv.python, "torch"):
        print(f"  venv ours: installing {TORCH_PIN} ...", flush=True)
        _pip(venv.python, [TORCH_PIN], log, constraints)
    if not (root / "bin" / "testmon-watch").exists():
        raise VenvError(f"venv ours has no testmon-watch script; see {log}")
    return venv


def ensure_ptw(python: str = sys.executable) -> Venv:
    """The baseline venv: pytest-watcher 0.6.3 + pytest-testmon 2.2.0 + torch."""
    root = VENV_DIR / "ptw"
    py = root / "bin" / "python"
    stamp = {"args": " ".join(PTW_ARGS), "python": sys.version.split()[0]}
    stamp_file = root / ".bench-stamp.json"
    if py.exists() and stamp_file.exists():
        try:
            if json.loads(stamp_file.read_text()) == stamp:
                return Venv("ptw", py)
        except json.JSONDecodeError:
            pass
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / "venv-ptw.log"
    log.write_text("")
    if root.exists():
        shutil.rmtree(root)
    print(f"  creating venv ptw ({' '.join(PTW_ARGS)}) ...", flush=True)
    venvs._run([python, "-m", "venv", str(root)], log)
    constraints = root / "constraints.txt"
    constraints.write_text(f"{PYTEST_PIN}\n{COVERAGE_PIN}\n")
    _pip(py, PTW_ARGS, log, constraints)
    if not (root / "bin" / "ptw").exists():
        raise VenvError(f"venv ptw has no ptw script; see {log}")
    stamp_file.write_text(json.dumps(stamp, indent=1))
    return Venv("ptw", py)


def main() -> None:
    """Command line: create both venvs and print their interpreters."""
    for name, fn in (("ours", ensure_ours), ("ptw", ensure_ptw)):
        try:
            print(name, fn().python, flush=True)
        except VenvError as exc:
            print(f"{name}: {exc}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
