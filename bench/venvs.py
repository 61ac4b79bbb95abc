"""Create (or reuse) one virtualenv per benchmarked tool under bench/.work/venvs/.

* ``ours``: ``pip install -e <repo root>`` plus the pinned pytest.
* ``testmon``: the pinned pytest plus pytest-testmon 2.2.0 (not our package).

A venv is reused when its stamp file matches the wanted requirements, the
interpreter version and (for ``ours``) the repo's packaging metadata.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VENV_DIR = BENCH_DIR / ".work" / "venvs"
LOG_DIR = BENCH_DIR / ".work" / "logs"

PYTEST_PIN = "pytest==9.2.0"
COVERAGE_PIN = "coverage==7.17.5"  # both tools may trace with coverage.py: same version
TESTMON_PIN = "pytest-testmon==2.2.0"
# pytest plugin names as seen by ``-p no:NAME`` (entry-point names).
TESTMON_PLUGIN_NAME = "pytest-testmon"


@dataclass(frozen=True)
class Venv:
    """A ready virtualenv: its name and interpreter."""

    name: str
    python: Path


class VenvError(RuntimeError):
    """A virtualenv could not be created or installed into; message is one line."""


def _packaging_fingerprint() -> str:
    """Hash of the repo files that decide what ``pip install -e`` installs."""
    h = hashlib.sha256()
    for name in ("pyproject.toml", "setup.py", "setup.cfg"):
        path = REPO_ROOT / name
        if path.exists():
            h.update(name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _wanted(name: str) -> tuple[list[str], dict[str, str]]:
    """pip arguments and stamp contents for tool ``name``."""
    if name == "ours":
        args = ["-e", str(REPO_ROOT), PYTEST_PIN]
        extra = {"packaging": _packaging_fingerprint()}
    elif name == "testmon":
        args = [PYTEST_PIN, TESTMON_PIN]
        extra = {}
    else:
        raise ValueError(f"unknown venv {name!r}")
    stamp = {"args": " ".join(args), "python": sys.version.split()[0], **extra}
    return args, stamp


def _run(cmd: list[str], log: Path) -> None:
    """Run an install step, appending output to log; raise VenvError on failure."""
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = [line for line in log.read_text().splitlines() if line.strip()][-1:]
        raise VenvError(
            f"{' '.join(cmd[:4])}... failed ({tail[0] if tail else 'no output'}); see {log}"
        )


def ensure(name: str, python: str = sys.executable) -> Venv:
    """Return venv ``name``, creating or re-installing it when its stamp is stale."""
    args, stamp = _wanted(name)
    root = VENV_DIR / name
    stamp_file = root / ".bench-stamp.json"
    py = root / "bin" / "python"
    if py.exists() and stamp_file.exists():
        try:
            if json.loads(stamp_file.read_text()) == stamp:
                return Venv(name, py)
        except json.JSONDecodeError:
            pass
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"venv-{name}.log"
    log.write_text("")
    if root.exists():
        shutil.rmtree(root)
    print(f"  creating venv {name} ({' '.join(args)}) ...", flush=True)
    _run([python, "-m", "venv", str(root)], log)
    constraints = root / "constraints.txt"
    constraints.write_text(f"{PYTEST_PIN}\n{COVERAGE_PIN}\n")
    _run(
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
    stamp_file.write_text(json.dumps(stamp, indent=1))
    return Venv(name, py)


def main() -> None:
    """Command line: create both venvs and print their interpreters."""
    for name in ("testmon", "ours"):
        try:
            print(name, ensure(name).python)
        except VenvError as exc:
            print(f"{name}: {exc}")


if __name__ == "__main__":
    main()
