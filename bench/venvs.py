"""Create (or reuse) one virtualenv per benchmarked tool under bench/.work/venvs/.

* ``ours``: ``pip install <repo root>`` plus the pinned pytest: a regular install,
  as users get it (an editable install adds ~10 ms to every interpreter start:
  its import finder is loaded by a .pth file).
* ``testmon``: the pinned pytest plus pytest-testmon 2.2.0 (not our package).

Venvs of the interpreter running this script live in ``bench/.work/venvs/``;
those of another Python version (``ensure(name, python)``, ``run.py --python``)
in ``bench/.work/venvs-py<XY>/`` (``venvs-py312``). A venv is reused when its
stamp file matches the wanted requirements, the interpreter version and (for
``ours``) the repo's packaging metadata.
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
    """Hash of what ``pip install <repo>`` installs: packaging files and the package source."""
    h = hashlib.sha256()
    paths = [REPO_ROOT / name for name in ("pyproject.toml", "setup.py", "setup.cfg")]
    paths += sorted((REPO_ROOT / "testmon_watch").rglob("*.py"))
    for path in paths:
        if path.exists():
            h.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def python_version(python: str | Path) -> str:
    """Full version ("3.12.4") of an interpreter; VenvError when it does not run."""
    if str(python) == sys.executable:
        return sys.version.split()[0]
    try:
        proc = subprocess.run(
            [str(python), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VenvError(f"cannot run {python}: {exc}") from exc
    if proc.returncode != 0 or not proc.stdout.strip():
        raise VenvError(f"cannot run {python}: {(proc.stderr.strip() or 'no output')[-200:]}")
    return proc.stdout.strip()


def version_tag(version: str) -> str:
    """ "3.12.4" -> "py312"."""
    major, minor = version.split(".")[:2]
    return f"py{major}{minor}"


def is_default_version(version: str) -> bool:
    """Same major.minor as the interpreter running the benchmark."""
    return version_tag(version) == version_tag(sys.version.split()[0])


def venv_dir(version: str) -> Path:
    """Where the venvs for interpreters of `version` live."""
    return (
        VENV_DIR
        if is_default_version(version)
        else VENV_DIR.with_name(f"venvs-{version_tag(version)}")
    )


def _wanted(name: str, version: str) -> tuple[list[str], dict[str, str]]:
    """pip arguments and stamp contents for tool ``name``."""
    if name == "ours":
        args = [str(REPO_ROOT), PYTEST_PIN]
        extra = {"packaging": _packaging_fingerprint()}
    elif name == "testmon":
        args = [PYTEST_PIN, TESTMON_PIN]
        extra = {}
    else:
        raise ValueError(f"unknown venv {name!r}")
    stamp = {"args": " ".join(args), "python": version, **extra}
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


def ensure(name: str, python: str | Path = sys.executable) -> Venv:
    """Return venv ``name`` for interpreter ``python``, creating or re-installing it
    when its stamp is stale."""
    version = python_version(python)
    args, stamp = _wanted(name, version)
    suffix = "" if is_default_version(version) else f"-{version_tag(version)}"
    return build(name, venv_dir(version) / name, python, args, stamp, f"venv-{name}{suffix}.log")


def build(
    name: str,
    root: Path,
    python: str | Path,
    args: list[str],
    stamp: dict[str, str],
    log_name: str,
    log_dir: Path = LOG_DIR,
) -> Venv:
    """The venv at ``root`` with ``pip install ARGS`` done (pytest and coverage pinned),
    reused while its stamp file equals ``stamp``; else created from nothing."""
    stamp_file = root / ".bench-stamp.json"
    py = root / "bin" / "python"
    if py.exists() and stamp_file.exists():
        try:
            if json.loads(stamp_file.read_text()) == stamp:
                return Venv(name, py)
        except json.JSONDecodeError:
            pass
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / log_name
    log.write_text("")
    if root.exists():
        shutil.rmtree(root)
    print(f"  creating venv {name} ({' '.join(args)}) ...", flush=True)
    _run([str(python), "-m", "venv", str(root)], log)
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
    """Command line: create both venvs and print their interpreters.

    ``python bench/venvs.py [PYTHON]``: for another interpreter than this one.
    """
    python = sys.argv[1] if len(sys.argv) > 1 else sys.executable
    for name in ("testmon", "ours"):
        try:
            print(name, ensure(name, python).python)
        except VenvError as exc:
            print(f"{name}: {exc}")


if __name__ == "__main__":
    main()
