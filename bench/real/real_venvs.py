"""The two virtualenvs of each real project, built with bench/venvs.py's ``build``.

``bench/.work/real/venvs/<project>-<name>/``, each with the pinned pytest and
coverage, the project installed with ``pip install -e`` from that venv's own
checkout (fetch.checkout) and the project's test deps:

* ``ours``: plus a regular ``pip install`` of this repo (as users get it).
* ``testmon``: plus pytest-testmon 2.2.0, pytest-watcher 0.6.3 and ``watchdog<6``
  (0.6.3 never reruns with watchdog 7). It runs plain pytest (``-p no:pytest-testmon``),
  the bare start, ``pytest --testmon`` and ``ptw``; pytest-watcher is no pytest plugin,
  so it changes nothing in the pytest runs.

One pair per Python version (``--python``): ``<project>-<name>-py<X.Y>``.

Reused while the stamp matches (requirements, interpreter, project sha256 and, for
``ours``, the repo's packaging fingerprint); rebuilt from nothing otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import fetch
import venvs
import watch_venvs
from projects import RealProject
from venvs import PYTEST_PIN, TESTMON_PIN, Venv

VENVS_DIR = fetch.REAL_DIR / "venvs"
LOG_DIR = fetch.REAL_DIR / "logs"
TOOL_VENVS = ("ours", "testmon")


def ensure(project: RealProject, name: str, python: str | Path = sys.executable) -> Venv:
    """Venv ``name`` ("ours" or "testmon") of the project, with its checkout installed."""
    root = fetch.checkout(project, name)
    if name == "ours":
        tool_args = [str(venvs.REPO_ROOT)]
        extra = {"packaging": venvs._packaging_fingerprint()}
    elif name == "testmon":
        tool_args = [TESTMON_PIN, watch_venvs.PTW_PIN, watch_venvs.WATCHDOG_PIN]
        extra = {}
    else:
        raise ValueError(f"unknown venv {name!r}")
    args = [PYTEST_PIN, *tool_args, *project.test_deps, "-e", str(root)]
    stamp = {
        "args": " ".join(args),
        "python": venvs.python_version(python),
        "sdist": project.sha256,
        **extra,
    }
    version = stamp["python"]
    return venvs.build(
        f"{project.name}/{name} (Python {version})",
        VENVS_DIR / f"{project.name}-{name}-py{version}",
        python,
        args,
        stamp,
        f"venv-{project.name}-{name}.log",
        LOG_DIR,
    )


def results_suffix(python: str | Path) -> str:
    """'' for this interpreter, '-py312' for another: how a results file names its Python."""
    if str(python) == sys.executable:
        return ""
    major, minor = venvs.python_version(python).split(".")[:2]
    return f"-py{major}{minor}"
