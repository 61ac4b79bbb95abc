"""Benchmark: recording code run in child processes.

A generated suite of 40 tests where every test starts 2 processes with the
multiprocessing "spawn" start method (half through `Pool(2).map`, half through
2 `Process` objects), each running a small project function. In the same run,
median of 3 (the tools take turns within each repetition):

- plain `pytest -p no:testmon_watch`;
- `pytest --testmon`, first full run (records parent and children);
- `coverage run -m pytest -p no:testmon_watch` with `concurrency = multiprocessing`,
  `parallel = true`, `source = .`, and then `coverage combine`.

Prints a table with ratios against plain pytest and writes
`bench/results-children.md`. Usage: ``python bench/children.py [--tests N] [--reps N]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK_DIR = HERE / ".work" / "children"
RESULTS = HERE / "results-children.md"
N_FUNCS = 8

COVERAGERC = """\
[run]
concurrency = multiprocessing
parallel = true
source = .
"""


def generate(root: Path, n_tests: int) -> None:
    """Write the project: `proj/calc.py` (functions only children run) and the test files."""
    if root.exists():
        shutil.rmtree(root)
    (root / "proj").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pytest.ini").write_text("[pytest]\npythonpath = .\ntestpaths = tests\n")
    (root / ".coveragerc").write_text(COVERAGERC)
    (root / "proj" / "__init__.py").write_text("")
    funcs = [
        textwrap.dedent(f"""
            def f{i}(x):
                total = 0
                for k in range(200):
                    total += (k * {i + 1} + x) % 7
                return total
        """)
        for i in range(N_FUNCS)
    ]
    (root / "proj" / "calc.py").write_text("".join(funcs).lstrip())
    per_file = 5
    for start in range(0, n_tests, per_file):
        body = [
            "import multiprocessing",
            "",
            "from proj import calc",
            "",
            'CTX = multiprocessing.get_context("spawn")',
            "",
        ]
        for t in range(start, min(start + per_file, n_tests)):
            fn = f"calc.f{t % N_FUNCS}"
            if t % 2 == 0:
                body += [
                    "",
                    f"def test_{t}():",
                    "    with CTX.Pool(2) as pool:",
                    f"        assert len(pool.map({fn}, [1, 2])) == 2",
                    "",
                ]
            else:
                body += [
                    "",
                    f"def test_{t}():",
                    f"    procs = [CTX.Process(target={fn}, args=(i,)) for i in (1, 2)]",
                    "    for p in procs:",
                    "        p.start()",
                    "    for p in procs:",
                    "        p.join()",
                    "    assert [p.exitcode for p in procs] == [0, 0]",
                    "",
                ]
        (root / "tests" / f"test_m{start // per_file}.py").write_text("\n".join(body))


def clean(root: Path) -> None:
    for pattern in (".testmondata*", ".coverage", ".coverage.*"):
        for path in root.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    shutil.rmtree(root / ".pytest_cache", ignore_errors=True)


def timed(cmd: list[str], cwd: Path, log: Path) -> float:
    env = dict(os.environ)
    for name in ("PYTHONPATH", "COVERAGE_PROCESS_START", "PYTEST_ADDOPTS"):
        env.pop(name, None)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\nsee {log}")
    return seconds


def measure(root: Path, reps: int) -> dict[str, list[float]]:
    py = sys.executable
    pytest = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    phases = {
        "plain": [*pytest, "-p", "no:testmon_watch"],
        "testmon": [*pytest, "--testmon"],
        "coverage": [
            py,
            "-m",
            "coverage",
            "run",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:testmon_watch",
        ],
    }
    logs = WORK_DIR.parent / "logs-children"
    logs.mkdir(parents=True, exist_ok=True)
    times: dict[str, list[float]] = {"plain": [], "testmon": [], "coverage": [], "combine": []}
    for rep in range(reps):
        for name, cmd in phases.items():
            clean(root)
            times[name].append(timed(cmd, root, logs / f"{name}-{rep}.log"))
            print(f"  rep {rep + 1}/{reps} {name:9s} {times[name][-1]:6.2f} s", flush=True)
            if name == "coverage":
                n_parts = len(list(root.glob(".coverage.*")))
                times["combine"].append(
                    timed(
                        [py, "-m", "coverage", "combine", "-q"], root, logs / f"combine-{rep}.log"
                    )
                )
                print(
                    f"  rep {rep + 1}/{reps} combine   {times['combine'][-1]:6.2f} s"
                    f" ({n_parts} data files)",
                    flush=True,
                )
    return times


def edit_check(root: Path, n_tests: int) -> tuple[int, int]:
    """Recording really happened: after editing f0 (run only by children), the tests using it."""
    clean(root)
    py = sys.executable
    cmd = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--testmon"]
    logs = WORK_DIR.parent / "logs-children"
    timed(cmd, root, logs / "check-first.log")
    calc = root / "proj" / "calc.py"
    calc.write_text(calc.read_text().replace("(k * 1 + x) % 7", "(k * 1 + x) % 7 + 0", 1))
    timed(cmd, root, logs / "check-edit.log")
    text = (logs / "check-edit.log").read_text()
    selected = sum(
        int(w)
        for w, nxt in zip(text.split(), text.split()[1:], strict=False)
        if w.isdigit() and nxt.rstrip(",") in ("passed", "failed")
    )
    expected = len([t for t in range(n_tests) if t % N_FUNCS == 0])
    clean(root)
    return selected, expected


def report(times: dict[str, list[float]], n_tests: int, reps: int) -> str:
    med = {k: statistics.median(v) for k, v in times.items()}
    plain = med["plain"]
    rows = [
        ("plain pytest", med["plain"]),
        ("pytest --testmon (first run, recording)", med["testmon"]),
        ("coverage run (multiprocessing)", med["coverage"]),
        ("coverage run + coverage combine", med["coverage"] + med["combine"]),
    ]
    lines = [
        "# Child-process recording benchmark",
        "",
        f"{n_tests} tests, each starting 2 spawn processes (Pool(2).map or 2 Process objects) "
        f"running a small project function; median of {reps}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{dt.date.today().isoformat()}.",
        "",
        "| run | seconds | vs plain |",
        "|---|---:|---:|",
    ]
    for name, seconds in rows:
        lines.append(f"| {name} | {seconds:.2f} | {seconds / plain:.2f}x |")
    lines += ["", f"`coverage combine` alone: {med['combine']:.2f} s.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=40)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    root = WORK_DIR / "proj-suite"
    generate(root, args.tests)
    print(f"suite: {args.tests} tests in {root}")
    times = measure(root, args.reps)
    selected, expected = edit_check(root, args.tests)
    text = report(times, args.tests, args.reps)
    text += (
        f"Check: after editing `f0` (run only in children) `pytest --testmon` ran "
        f"{selected} tests (the {expected} whose children run it).\n"
    )
    print()
    print(text)
    RESULTS.write_text(text)
    print(f"wrote {RESULTS.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
