"""Benchmark ours against pytest-testmon and pytest-watcher on real projects from PyPI.

For each project of projects.py, in one run: fetch and verify its pinned sdist,
make the two checkouts and venvs, then the whole-process phases (phases.py:
first run, no-change rerun, one-function edit rerun, data file size) and the
watch loop (watch_real.py). Writes bench/results-real.md and
bench/.work/real/results.json; every run's output is in bench/.work/real/logs/
(the watchers' in bench/.work/logs/watch-real-*.log).

Usage: ``python bench/real/run.py [--quick] [--project NAME[,NAME]] [--rounds N]
[--saves N] [--pause-ms MS] [--no-watch] [--python PY] [--pytest-arg=ARG ...]``.
``make bench-real`` runs it all.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import fetch  # noqa: E402
import real_venvs  # noqa: E402
import venvs  # noqa: E402
import watch_latency  # noqa: E402
import watch_real  # noqa: E402
from phases import PhaseBench, Reps  # noqa: E402
from projects import PROJECTS, QUICK  # noqa: E402
from report_real import ProjectReport, render  # noqa: E402
from venvs import VenvError  # noqa: E402

RESULTS_MD = HERE.parent / "results-real.md"
RESULTS_JSON = fetch.REAL_DIR / "results.json"
FULL_REPS = Reps(full=5, nochange=7, edit=5)
QUICK_REPS = Reps(full=3, nochange=5, edit=3)


def bench_project(name: str, args: argparse.Namespace) -> ProjectReport:
    """Everything for one project; a failure is reported, the next project still runs."""
    project = PROJECTS[name]
    if args.pytest_arg:
        project = dataclasses.replace(project, pytest_args=(*project.pytest_args, *args.pytest_arg))
    print(f"{name} {project.version}: {project.covers}", flush=True)
    rep = ProjectReport(project, None, None)
    try:
        pythons = {
            v: real_venvs.ensure(project, v, args.python).python for v in real_venvs.TOOL_VENVS
        }
    except (VenvError, fetch.FetchError) as exc:
        rep.error = str(exc)
        print(f"  {name}: {exc}", flush=True)
        return rep
    reps = QUICK_REPS if args.quick else FULL_REPS
    try:
        rep.runs = PhaseBench(project, pythons, reps, real_venvs.LOG_DIR).run()
    except fetch.FetchError as exc:
        rep.error = str(exc)
        print(f"  {name}: {exc}", flush=True)
        return rep
    if args.no_watch:
        return rep
    edit = rep.runs.edit.selected("testmon")
    suite = rep.runs.suite.get("plain")
    rep.watch = watch_real.run(
        project,
        pythons,
        rounds=args.rounds,
        saves=args.saves,
        pause=args.pause_ms / 1000,
        expected=int(statistics.median(edit)) if edit else -1,
        tests=suite.selected if suite else 0,
    )
    return rep


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"only {QUICK} (unless --project), fewer repetitions, one watch round",
    )
    parser.add_argument("--project", default="", help=f"comma-separated: {', '.join(PROJECTS)}")
    parser.add_argument("--rounds", type=int, default=None, help="watch rounds per tool (2; 1)")
    parser.add_argument("--saves", type=int, default=9, help="timed saves per watch round (9)")
    parser.add_argument("--pause-ms", type=float, default=1000.0, help="pause before a save")
    parser.add_argument("--no-watch", action="store_true", help="skip the watch loop")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter of every venv (default: this one); results for another "
        "version than 3.11 go to bench/results-real-pyXY.md",
    )
    parser.add_argument(
        "--pytest-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for every pytest run of every tool (repeatable; "
        "use --pytest-arg=-W...)",
    )
    args = parser.parse_args()
    names = [n for n in args.project.split(",") if n] or ([QUICK] if args.quick else [*PROJECTS])
    for n in names:
        if n not in PROJECTS:
            parser.error(f"unknown project {n!r} (known: {', '.join(PROJECTS)})")
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    command = "python bench/real/run.py " + " ".join(sys.argv[1:])
    load = __import__("os").getloadavg()[0]
    start = time.monotonic()
    reports: list[ProjectReport] = []
    try:
        reports.extend(bench_project(n, args) for n in names)
    except KeyboardInterrupt:
        print("interrupted; stopping the watchers", flush=True)
        watch_latency._kill_all()
        return 130
    partial = ""
    if len(names) < len(PROJECTS) or args.quick or args.no_watch:
        partial = (
            f"{len(names)} of {len(PROJECTS)} projects"
            + (", --quick repetitions" if args.quick else "")
            + (", no watch loop" if args.no_watch else "")
            + "; `make bench-real` runs them all."
        )
    version = venvs.python_version(args.python)  # "3.12.4"
    text = render(reports, command.strip(), time.monotonic() - start, load, partial, version)
    results_md, results_json = RESULTS_MD, RESULTS_JSON
    minor = ".".join(version.split(".")[:2])
    if minor != "3.11":
        suffix = "-py" + minor.replace(".", "")
        results_md = RESULTS_MD.with_name(f"results-real{suffix}.md")
        results_json = RESULTS_JSON.with_name(f"results{suffix}.json")
    results_md.write_text(text, encoding="utf-8")
    results_json.parent.mkdir(parents=True, exist_ok=True)
    results_json.write_text(
        json.dumps(
            [
                {
                    "project": r.project.name,
                    "version": r.project.version,
                    "error": r.error,
                    "runs": r.runs.to_json() if r.runs else None,
                    "watch": r.watch.to_json() if r.watch else None,
                }
                for r in reports
            ],
            indent=1,
            default=str,
        )
    )
    print("\n" + text, flush=True)
    print(f"wrote {results_md.relative_to(HERE.parent.parent)} and {results_json}")
    return 1 if any(r.error for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
