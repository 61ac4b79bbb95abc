"""The floor of save-to-first-result on a real project, for a watcher that imports edits afresh.

Ours (a standby forked from a warm server) and pytest-watcher (a new process)
both run an edit by importing the edited code again. Neither can show a result
before (1) the save has settled, (2) the project and its conftest.py files are
imported, pytest is configured and its session started, (3) the test modules
of the tests to run are collected, and (4) the first of them has run.

This measures (2)-(4) with nothing of ours (warm_first_result.py): pytest,
untraced, forked from a process that has imported pytest and every third-party
module of the suite, waiting where our standby waits, and collecting just the
tests our plugin selects for the bench's edit (found with ``pytest --testmon
--collect-only`` after a recording run), as narrowly as ours. The floor adds (1)
as ours has it: the 16.7 ms quiet period after the editor closes the file
(watch/observer.py's CLOSED_DEBOUNCE and CLOSED_FRACTION).

Where the floor is above 150 ms, or above a tenth of pytest-watcher's time from
the last `make bench-real` (bench/.work/real/results.json), that target cannot
be met by re-importing the edited code, whatever the recorder costs; only
patching the edited function into the already imported modules could.

Usage: ``python bench/real/watch_floor.py [--project NAME[,NAME]] [--reps N]
[--python PY]``; writes bench/results-watch-floor[-pyXY].md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import fetch  # noqa: E402
import real_venvs  # noqa: E402
from projects import PROJECTS, RealProject  # noqa: E402

# Our quiet period after a single file's close, in ms: observer.py's CLOSED_DEBOUNCE and
# CLOSED_FRACTION at the default 50 ms debounce, max(15, 50 / 3).
QUIET_MS = 50 / 3
TARGET_MS = 150.0
STRIPPED = ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "VIRTUAL_ENV")
STRIPPED += ("COVERAGE_PROCESS_START", "PYTHONDONTWRITEBYTECODE")


def _env(python: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED}
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _pytest(python: Path, root: Path, args: list[str]) -> str:
    proc = subprocess.run(
        [str(python), "-m", "pytest", *args],
        cwd=root,
        env=_env(python),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 1):
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise SystemExit(f"pytest {' '.join(args[:4])} ... exited {proc.returncode}:\n{tail}")
    return proc.stdout


def selected_nodeids(project: RealProject, python: Path, root: Path) -> list[str]:
    """The tests our plugin selects after the bench's edit (a recording run first)."""
    opts = [*project.pytest_args, *project.test_paths]
    spec = fetch.edit_spec(project, root)
    fetch.reset(project, root)
    try:
        _pytest(python, root, ["--testmon", *opts])
        path = root / spec.path
        path.write_text(
            path.read_text(encoding="utf-8").replace(spec.marker, spec.variant(1), 1),
            encoding="utf-8",
        )
        out = _pytest(python, root, ["--testmon", "--collect-only", "-q", *opts])
    finally:
        fetch.reset(project, root)
    # `-q --collect-only` lists one node id per line (spaces and brackets included).
    return [line for line in out.splitlines() if line.partition("::")[0].endswith(".py")]


def measure(name: str, reps: int, python: str) -> dict[str, object]:
    project = PROJECTS[name]
    venv = real_venvs.ensure(project, "ours", python).python
    root = fetch.checkout(project, "ours")
    nodeids = selected_nodeids(project, venv, root)
    spec = fetch.edit_spec(project, root)
    with tempfile.TemporaryDirectory() as tmp:
        ids_file = Path(tmp, "nodeids.txt")
        ids_file.write_text("\n".join(nodeids) + "\n")
        edit_file = Path(tmp, "edit.json")
        edit_file.write_text(
            json.dumps({"path": spec.path, "marker": spec.marker, "template": spec.template})
        )
        cmd = [str(venv), str(HERE / "warm_first_result.py"), str(root), str(edit_file)]
        cmd += [str(ids_file), str(reps), "--", *project.pytest_args, *project.test_paths]
        proc = subprocess.run(
            cmd, cwd=root, env=_env(venv), capture_output=True, text=True, check=False
        )
    fetch.reset(project, root)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SystemExit(f"{name}: warm_first_result.py failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    first = sorted(result["first_ms"])
    if not first:
        raise SystemExit(f"{name}: no repetition gave a result")
    median = statistics.median(first)
    gate = "early" if result["early_gate"] else "late"
    print(f"  {name}: {len(nodeids)} tests, {gate} gate, first result {median:.0f} ms", flush=True)
    return {
        "tests": len(nodeids),
        "preloaded": result["preloaded"],
        "early_gate": result["early_gate"],
        "first_ms": first,
        "floor_ms": QUIET_MS + median,
    }


def _last_bench(suffix: str) -> dict[str, dict[str, float]]:
    """Median save-to-first-result of ours and of pytest-watcher per project, last bench."""
    name = f"results{suffix}.json"
    try:
        data = json.loads((fetch.REAL_DIR / name).read_text())
    except (OSError, ValueError):
        return {}
    found: dict[str, dict[str, float]] = {}
    for entry in data if isinstance(data, list) else []:
        rounds = entry.get("watch") or []
        medians = {}
        for tool in ("ours", "ptw"):
            values = [
                save["first_ms"]
                for r in rounds
                for save in (r.get(tool) or {}).get("saves", [])
                if save.get("first_ms") is not None
            ]
            if values:
                medians[tool] = statistics.median(values)
        found[entry.get("project", "")] = medians
    return found


def render(results: dict[str, dict[str, object]], reps: int, argv: str, suffix: str) -> str:
    last = _last_bench(suffix)
    lines = [
        "# Watch-loop floor on real projects",
        "",
        f"`python bench/real/watch_floor.py {argv}`".replace(" `", "`"),
        f"on {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {suffix[3:] or platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "Method: bench/real/watch_floor.py's docstring. Floor = our 16.7 ms quiet period after",
        "the save + a warm, untraced pytest without our plugin, waiting where our standby",
        "waits, collecting just the tests our plugin selects, from the edit to its first",
        f"result (median of {reps} edits, each new). Gate: early = before the conftest.py",
        "files (they import the edited module), late = at the start of collection.",
        "",
        "| project | tests run | gate | warm pytest to first result, ms (median; min-max) "
        "| floor ms | <= 150 ms possible | pytest-watcher ms (last bench) "
        "| best ratio possible | >= 10x possible |",
        "|---|---:|---|---:|---:|---|---:|---:|---|",
    ]
    for name, r in results.items():
        first = r["first_ms"]
        assert isinstance(first, list)
        floor = float(r["floor_ms"])  # type: ignore[arg-type]
        ptw = last.get(name, {}).get("ptw")
        ratio = f"{ptw / floor:.1f}x" if ptw else "-"
        ten = ("yes" if ptw / floor >= 10 else "**no**") if ptw else "-"
        lines.append(
            f"| {name} | {r['tests']} | {'early' if r['early_gate'] else 'late'} "
            f"| {statistics.median(first):.0f} ({min(first):.0f}-{max(first):.0f}) "
            f"| {floor:.0f} | {'yes' if floor <= TARGET_MS else '**no**'} "
            f"| {f'{ptw:.0f}' if ptw else '-'} | {ratio} | {ten} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=",".join(PROJECTS))
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    results = {}
    for name in args.project.split(","):
        print(f"{name}:", flush=True)
        results[name] = measure(name, args.reps, args.python)
    suffix = real_venvs.results_suffix(args.python)
    out = HERE.parent / f"results-watch-floor{suffix}.md"
    out.write_text(render(results, args.reps, " ".join(sys.argv[1:]), suffix))
    print(out.read_text())


if __name__ == "__main__":
    main()
