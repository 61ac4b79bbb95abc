"""How fast can any `pytest --testmon` no-change run be? The start-up floor.

Times, in the benchmark's venvs (`bench/.work/venvs`, made by `make bench`),
the median of 15 runs of: an empty interpreter, `import pytest`, and plain
pytest with no plugins in an empty folder. A pytest plugin cannot answer
before pytest is imported, so `import pytest` bounds every no-change run
from below; compare it with half of pytest-testmon's no-change time in
bench/results.md.

    .venv/bin/python bench/floor.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

VENVS = Path(__file__).parent / ".work" / "venvs"
RUNS = 15


def median_seconds(cmd: list[str], cwd: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as empty:
        for venv in ("ours", "testmon"):
            python = str(VENVS / venv / "bin" / "python")
            if not os.path.exists(python):
                raise SystemExit(f"no {python}: run `make bench` first")
            cases = {
                "python -c pass": [python, "-c", "pass"],
                "python -c 'import pytest'": [python, "-c", "import pytest"],
                "pytest, no plugins, empty folder": [
                    python,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "-p",
                    "no:testmon_watch",
                    "-p",
                    "no:pytest-testmon",
                ],
            }
            for name, cmd in cases.items():
                print(f"{venv:8} {name:34} {median_seconds(cmd, empty):.3f} s")


if __name__ == "__main__":
    main()
