"""The floor of first-run overhead on a real project: coverage.py's tracer alone.

Any tool that records which lines each test executes with coverage.py's tracer
(pytest-testmon, and ours below Python 3.12) pays at least what that tracer
costs on the suite, before any bookkeeping of its own. This times, in the
bench's venvs and checkouts (made by run.py), alternating within each
repetition:

* ``plain``: ``pytest -p no:pytest-testmon`` (as run.py's first-run baseline);
* ``coverage``: ``coverage run --source=. -m pytest -p no:pytest-testmon``: line
  tracing of the project's files from start to end, no contexts, nothing else
  (what pytest-testmon's tracing costs before its own bookkeeping);
* ``windows``: plain pytest with floor_plugin.py: the same tracer, on only
  while each test's setup, call and teardown run, the windows ours traces in
  below 3.12, and nothing done with what it records;
* ``testmon``: ``pytest --testmon`` with pytest-testmon 2.2.0, from no data file;
* ``ours``: ``pytest --testmon`` with this repo, from no data file.

and prints per project the overheads over plain as ratios to pytest-testmon's
(medians of the per-repetition ratios). ``windows`` is a floor for ours: when
it is above 0.5, "first-run overhead at most half of pytest-testmon's" is out
of reach for a recorder that traces each test's own code with that tracer on
this interpreter; what ours costs above it is bookkeeping.

Usage: ``python bench/real/trace_floor.py [--project NAME[,NAME]] [--reps N]
[--python PY]``; writes bench/results-trace-floor[-pyXY].md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import fetch  # noqa: E402
import real_venvs  # noqa: E402
from measure import remove_data  # noqa: E402
from projects import PROJECTS  # noqa: E402

TOOLS = ("plain", "coverage", "windows", "testmon", "ours")
STRIPPED = ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "VIRTUAL_ENV")
STRIPPED += ("COVERAGE_PROCESS_START", "PYTHONDONTWRITEBYTECODE")


def timed(cmd: list[str], cwd: Path, log: Path) -> float | None:
    """Wall seconds of one run; None unless pytest exited 0 or 1 (the suite's own failures)."""
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED}
    if "floor_plugin" in cmd:
        env["PYTHONPATH"] = str(HERE)
    env["PATH"] = f"{Path(cmd[0]).parent}{os.pathsep}{env.get('PATH', '')}"
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    log.write_text(proc.stdout + proc.stderr)
    return seconds if proc.returncode in (0, 1) else None


def commands(name: str, python: str) -> dict[str, tuple[list[str], Path]]:
    project = PROJECTS[name]
    venv = {v: real_venvs.ensure(project, v, python).python for v in real_venvs.TOOL_VENVS}
    root = {v: fetch.checkout(project, v) for v in real_venvs.TOOL_VENVS}
    opts = [*project.pytest_args, *project.test_paths]
    tm, ours = str(venv["testmon"]), str(venv["ours"])
    no_testmon = ["-p", "no:pytest-testmon"]
    coverage_data = str(fetch.REAL_DIR / "trace-floor.coverage")
    trace = ["coverage", "run", f"--data-file={coverage_data}", "--source=."]
    return {
        "plain": ([tm, "-m", "pytest", *no_testmon, *opts], root["testmon"]),
        "coverage": (
            [tm, "-m", *trace, "-m", "pytest", *no_testmon, *opts],
            root["testmon"],
        ),
        "windows": (
            [tm, "-m", "pytest", "-p", "floor_plugin", *no_testmon, *opts],
            root["testmon"],
        ),
        "testmon": (
            [tm, "-m", "pytest", "--testmon", *opts, *project.testmon_args],
            root["testmon"],
        ),
        "ours": ([ours, "-m", "pytest", "--testmon", *opts], root["ours"]),
    }


def measure(name: str, reps: int, python: str) -> dict[str, list[float]]:
    cmds = commands(name, python)
    for _, root in cmds.values():
        fetch.reset(PROJECTS[name], root)
    times: dict[str, list[float]] = {t: [] for t in TOOLS}
    ratios: dict[str, list[float]] = {"coverage": [], "windows": [], "ours": []}
    for rep in range(reps):
        order = TOOLS[rep % len(TOOLS) :] + TOOLS[: rep % len(TOOLS)]
        got: dict[str, float | None] = {}
        for tool in order:
            cmd, root = cmds[tool]
            remove_data(root)
            log = real_venvs.LOG_DIR / f"{name}-floor-{tool}-{rep + 1}.log"
            got[tool] = timed(cmd, root, log)
            shown = f"{got[tool]:.2f} s" if got[tool] is not None else f"FAILED (log: {log})"
            print(f"  {name} {tool:8} #{rep + 1}: {shown}", flush=True)
        for tool, seconds in got.items():
            if seconds is not None:
                times[tool].append(seconds)
        plain, testmon = got["plain"], got["testmon"]
        if plain is None or testmon is None or testmon <= plain:
            continue
        for tool in ratios:
            value = got[tool]
            if value is not None:
                ratios[tool].append((value - plain) / (testmon - plain))
    for _, root in cmds.values():
        remove_data(root)
        fetch.reset(PROJECTS[name], root)
    return times | {f"ratio-{k}": v for k, v in ratios.items()}


def render(results: dict[str, dict[str, list[float]]], reps: int, argv: str) -> str:
    def med(values: list[float], fmt: str) -> str:
        return format(statistics.median(values), fmt) if values else "-"

    lines = [
        "# First-run overhead floor: coverage.py's tracer alone",
        "",
        f"`python bench/real/trace_floor.py {argv}` on {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()} for the bench, {reps} repetitions per tool, "
        "alternating. Method: the docstring of bench/real/trace_floor.py.",
        "",
        "| project | plain s | coverage run s | tracer in windows s | pytest-testmon s | ours s "
        "| overhead / pytest-testmon's: coverage run | tracer in windows (the floor) | ours "
        "| target <= 0.5 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        floor = statistics.median(r["ratio-windows"]) if r["ratio-windows"] else None
        verdict = "-" if floor is None else ("ruled out by the tracer" if floor > 0.5 else "open")
        lines.append(
            f"| {name} | {med(r['plain'], '.2f')} | {med(r['coverage'], '.2f')} "
            f"| {med(r['windows'], '.2f')} | {med(r['testmon'], '.2f')} | {med(r['ours'], '.2f')} "
            f"| {med(r['ratio-coverage'], '.2f')}x | {med(r['ratio-windows'], '.2f')}x "
            f"| {med(r['ratio-ours'], '.2f')}x | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="toolz,more-itertools,packaging")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    results = {}
    for name in args.project.split(","):
        print(f"{name}:", flush=True)
        results[name] = measure(name, args.reps, args.python)
    out = HERE.parent / f"results-trace-floor{real_venvs.results_suffix(args.python)}.md"
    out.write_text(render(results, args.reps, " ".join(sys.argv[1:])))
    print(out.read_text())


if __name__ == "__main__":
    main()
