"""Benchmark our `pytest --testmon` against pytest-testmon 2.2.0 and plain pytest.

Every number comes from the same run: for each project the three tools run
the same phases on their own fresh copy of the generated project:

1. full first run (no .testmondata), compared with plain pytest;
2. no-change rerun;
3. rerun after a one-function-body edit (same edit for both tools);
4. size of .testmondata after the full run.

Prints a table, writes bench/results.md and bench/.work/results.json; pytest
output of each run goes to bench/.work/logs/. With ``--python PATH`` (another
Python version than the one running this script) the tools run in venvs of
that interpreter and everything is kept apart by a version suffix:
bench/results-py312.md, bench/.work/results-py312.json, logs-py312/,
scratch-py312/, venvs-py312/.

Usage: ``python bench/run.py [--quick] [--project small|large] [--tools ...]
[--python PATH]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_projects
import venvs
from measure import (
    RunResult,
    apply_edit,
    data_size,
    fresh_copy,
    median,
    remove_data,
    run_pytest,
    warnings_in,
)

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / ".work"
TOOLS = ("plain", "testmon", "ours")


@dataclass(frozen=True)
class Outputs:
    """Where one interpreter's runs go: "" suffix for the running one, "-py312" else."""

    version: str  # of the benchmarked interpreter, "3.12.4"
    suffix: str

    @classmethod
    def for_version(cls, version: str) -> Outputs:
        default = venvs.is_default_version(version)
        return cls(version, "" if default else f"-{venvs.version_tag(version)}")

    @property
    def scratch(self) -> Path:
        return WORK_DIR / f"scratch{self.suffix}"

    @property
    def logs(self) -> Path:
        return WORK_DIR / f"logs{self.suffix}"

    @property
    def results_md(self) -> Path:
        return BENCH_DIR / f"results{self.suffix}.md"

    @property
    def results_json(self) -> Path:
        return WORK_DIR / f"results{self.suffix}.json"

    @property
    def warm_stamp(self) -> str:
        """File in the template saying its .pyc files for this version are written."""
        return f".bench-warm-{venvs.version_tag(self.version)}"


@dataclass(frozen=True)
class Reps:
    """How many timed runs each phase gets (median is reported), and a per-run timeout."""

    full: int
    nochange: int
    edit: int
    timeout: float  # seconds; a hung tool is reported as failed, the rest goes on


REPS = {
    "small": Reps(full=5, nochange=5, edit=5, timeout=120),
    "large": Reps(full=3, nochange=5, edit=3, timeout=600),
}


@dataclass(frozen=True)
class Tool:
    """A benchmarked tool: which venv and which extra pytest arguments."""

    name: str
    venv: str
    args: tuple[str, ...]


TOOL_SPECS = {
    "plain": Tool("plain", "testmon", ("-p", f"no:{venvs.TESTMON_PLUGIN_NAME}")),
    "testmon": Tool("testmon", "testmon", ("--testmon",)),
    "ours": Tool("ours", "ours", ("--testmon",)),
}


@dataclass
class ToolResult:
    """All runs of one tool on one project."""

    tool: str
    full: list[RunResult] = field(default_factory=list)
    nochange: list[RunResult] = field(default_factory=list)
    edit: list[RunResult] = field(default_factory=list)
    data_bytes: int | None = None
    error: str = ""  # first failure; later phases are skipped
    warnings: list[str] = field(default_factory=list)  # degraded runs, wrong counts

    def time(self, phase: str, cpu: bool = False) -> float | None:
        """Median wall (or CPU) seconds of a phase's successful runs, None if none."""
        runs = [r.cpu_seconds if cpu else r.seconds for r in getattr(self, phase) if r.ok]
        return median(runs) if runs else None

    def selected(self, phase: str) -> list[int]:
        """Tests run in each successful run of a phase."""
        return [r.selected for r in getattr(self, phase) if r.ok]


def _log(msg: str) -> None:
    """Progress line to stdout, flushed."""
    print(msg, flush=True)


class ProjectBench:
    """Runs every phase for every tool on one generated project."""

    def __init__(
        self,
        info: gen_projects.ProjectInfo,
        tools: list[str],
        reps: Reps,
        pythons: dict[str, Path],
        out: Outputs,
    ) -> None:
        self.info = info
        self.out = out
        self.template = Path(info.root)
        self.reps = reps
        self.pythons = pythons
        self.results = {t: ToolResult(t) for t in tools}
        for t in tools:
            if t not in pythons:
                self.results[t].error = f"venv {TOOL_SPECS[t].venv} unavailable"

    def _scratch(self, tool: str) -> Path:
        return self.out.scratch / f"{self.info.name}-{tool}"

    def _run(self, tool: str, phase: str, rep: int) -> RunResult:
        spec = TOOL_SPECS[tool]
        log = self.out.logs / f"{self.info.name}-{tool}-{phase}-{rep}.log"
        res = run_pytest(
            self.pythons[tool], self._scratch(tool), list(spec.args), log, self.reps.timeout
        )
        note = f"{res.selected} run" if res.ok else f"FAILED: {res.error}"
        for warning in warnings_in(res.notes):
            note += f"  [{warning}]"
        _log(f"  {self.info.name:5} {tool:7} {phase:8} #{rep}: {res.seconds:7.2f}s  {note}")
        return res

    def _active(self) -> list[str]:
        return [t for t, r in self.results.items() if not r.error]

    def _record(self, tool: str, phase: str, res: RunResult) -> None:
        result = self.results[tool]
        getattr(result, phase).append(res)
        if not res.ok and not result.error:
            result.error = f"{phase}: {res.error} (log: {res.log})"
        found = [f"{phase}: {w}" for w in warnings_in(res.notes)]
        if res.ok and phase == "full" and res.selected != self.info.tests:
            found.append(f"full: ran {res.selected} of {self.info.tests} tests")
        result.warnings += [w for w in found if w not in result.warnings]

    def warm(self) -> None:
        """Run plain pytest once in the template so .pyc caches are warm in every copy."""
        stamp = self.template / self.out.warm_stamp
        if stamp.exists() or ("plain" not in self.pythons and "testmon" not in self.pythons):
            return
        py = self.pythons.get("plain") or self.pythons["testmon"]
        _log(f"  {self.info.name}: warming .pyc caches (untimed plain run) ...")
        res = run_pytest(
            py,
            self.template,
            list(TOOL_SPECS["plain"].args),
            self.out.logs / f"{self.info.name}-warm.log",
        )
        if res.ok and res.counts.get("passed") == self.info.tests:
            stamp.write_text("ok\n")
        else:
            _log(f"  warning: warm-up run: {res.error or res.counts}")
        remove_data(self.template)

    def run(self) -> None:
        """Full runs, then no-change reruns, then edit reruns; tools interleaved."""
        self.warm()
        for rep in range(1, self.reps.full + 1):
            for tool in self._active():
                if tool != "plain" or rep == 1:
                    fresh_copy(self.template, self._scratch(tool))
                remove_data(self._scratch(tool))
                self._record(tool, "full", self._run(tool, "full", rep))
        for tool in self._active():
            if tool != "plain":
                self.results[tool].data_bytes = data_size(self._scratch(tool))
        stateful = [t for t in self._active() if t != "plain"]
        for rep in range(1, self.reps.nochange + 1):
            for tool in [t for t in stateful if not self.results[t].error]:
                self._record(tool, "nochange", self._run(tool, "nochange", rep))
        for rep in range(1, self.reps.edit + 1):
            for tool in [t for t in stateful if not self.results[t].error]:
                try:
                    apply_edit(self._scratch(tool), self.info.edit, rep)
                except (OSError, RuntimeError) as exc:
                    self.results[tool].error = f"edit: could not apply the edit: {exc}"
                    continue
                self._record(tool, "edit", self._run(tool, "edit", rep))

    def to_json(self) -> dict[str, object]:
        """Everything measured, for results.json."""
        return {
            "project": asdict(self.info),
            "reps": asdict(self.reps),
            "tools": {t: asdict(r) for t, r in self.results.items()},
        }


# ------------------------------------------------------------------ reporting


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def _fmt(value: float | int | None, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "s":
        return f"{value:.2f}s"
    if kind == "x":
        return f"{value:.2f}x"
    if kind == "bytes":
        return f"{int(value):,}"
    return str(value)


def _target(ratio: float | None, limit: float) -> str:
    """Target text for a ratio column: the limit and whether it was met."""
    verdict = "" if ratio is None else (" (met)" if ratio <= limit else " (MISSED)")
    return f"<= {limit}{verdict}"


def _sel(values: list[int]) -> str:
    if not values:
        return "n/a"
    return str(values[0]) if len(set(values)) == 1 else "/".join(map(str, values))


def table_rows(bench: ProjectBench) -> list[list[str]]:
    """Rows: metric, plain, testmon, ours, ours/testmon, target."""
    r = bench.results
    get = r.get

    def t(tool: str, phase: str, cpu: bool = False) -> float | None:
        res = get(tool)
        return res.time(phase, cpu) if res else None

    def sel(tool: str, phase: str) -> list[int]:
        res = get(tool)
        return res.selected(phase) if res else []

    def size(tool: str) -> int | None:
        res = get(tool)
        return res.data_bytes if res else None

    plain = t("plain", "full")
    rows: list[list[str]] = []
    full = {k: t(k, "full") for k in ("testmon", "ours")}
    over = {
        k: (v - plain if v is not None and plain is not None else None) for k, v in full.items()
    }
    rows.append(
        [
            "full run: wall time",
            _fmt(plain, "s"),
            _fmt(full["testmon"], "s"),
            _fmt(full["ours"], "s"),
            _fmt(_ratio(full["ours"], full["testmon"]), "x"),
            "",
        ]
    )
    rows.append(
        [
            "full run: time / plain",
            "1.00x",
            _fmt(_ratio(full["testmon"], plain), "x"),
            _fmt(_ratio(full["ours"], plain), "x"),
            "",
            "",
        ]
    )
    rows.append(
        [
            "full run: overhead (time - plain)",
            "",
            _fmt(over["testmon"], "s"),
            _fmt(over["ours"], "s"),
            _fmt(_ratio(over["ours"], over["testmon"]), "x"),
            _target(_ratio(over["ours"], over["testmon"]), 0.5),
        ]
    )
    plain_cpu = t("plain", "full", cpu=True)
    cpu_over = {
        k: (v - plain_cpu if v is not None and plain_cpu is not None else None)
        for k in ("testmon", "ours")
        for v in [t(k, "full", cpu=True)]
    }
    rows.append(
        [
            "full run: CPU overhead (user+sys - plain)",
            "",
            _fmt(cpu_over["testmon"], "s"),
            _fmt(cpu_over["ours"], "s"),
            _fmt(_ratio(cpu_over["ours"], cpu_over["testmon"]), "x"),
            "",
        ]
    )
    for phase, label, expected in (
        ("nochange", "no-change rerun", 0),
        ("edit", "one-function edit rerun", bench.info.edit.expected_selected),
    ):
        tm, ours = t("testmon", phase), t("ours", phase)
        rows.append(
            [
                f"{label}: wall time",
                "",
                _fmt(tm, "s"),
                _fmt(ours, "s"),
                _fmt(_ratio(ours, tm), "x"),
                _target(_ratio(ours, tm), 0.5) if phase == "nochange" else "",
            ]
        )
        rows.append(
            [
                f"{label}: tests run (expected {expected})",
                "",
                _sel(sel("testmon", phase)),
                _sel(sel("ours", phase)),
                "",
                "",
            ]
        )
    sizes = {k: size(k) for k in ("testmon", "ours")}
    rows.append(
        [
            ".testmondata bytes (+wal/shm)",
            "",
            _fmt(sizes["testmon"], "bytes"),
            _fmt(sizes["ours"], "bytes"),
            _fmt(_ratio(sizes["ours"], sizes["testmon"]), "x"),
            "",
        ]
    )
    return rows


HEADER = ["metric", "plain", "testmon", "ours", "ours/testmon", "target"]


def text_table(rows: list[list[str]]) -> str:
    """Aligned plain-text table."""
    widths = [max(len(str(row[i])) for row in [HEADER, *rows]) for i in range(len(HEADER))]
    out = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [HEADER, ["-" * w for w in widths], *rows]
    ]
    return "\n".join(out)


def md_table(rows: list[list[str]]) -> str:
    """GitHub markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join(["---"] + ["---:"] * 5) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _errors(bench: ProjectBench) -> list[str]:
    """One line per tool failure and per distinct warning."""
    out = [f"error: {t}: {r.error}" for t, r in bench.results.items() if r.error]
    out += [f"warning: {t}: {w}" for t, r in bench.results.items() for w in r.warnings]
    return out


def _describe(bench: ProjectBench) -> str:
    i, reps = bench.info, bench.reps
    return (
        f"{i.name}: {i.tests} tests in {i.test_files} test files, {i.source_modules} "
        f"source modules; edit: body of `{i.edit.function}` in `{i.edit.path}`; "
        f"median of {reps.full}/{reps.nochange}/{reps.edit} runs (full/no-change/edit)"
    )


def _tracers(version: str) -> str:
    """What each tool traces with on this Python version."""
    major, minor = (int(x) for x in version.split(".")[:2])
    if (major, minor) >= (3, 12):
        return (
            "Tracing: ours uses sys.monitoring, pytest-testmon coverage.py's CTracer "
            "(sys.settrace)."
        )
    return "Tracing: both tools use coverage.py's CTracer (sys.settrace)."


def write_reports(benches: list[ProjectBench], started: float, out: Outputs) -> None:
    """Write bench/results.md and bench/.work/results.json (with out's suffix)."""
    now = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    meta = {
        "date": now,
        "python": out.version,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "total_seconds": round(time.time() - started, 1),
        "pytest": venvs.PYTEST_PIN,
        "baseline": venvs.TESTMON_PIN,
    }
    md = [
        "# Benchmark results",
        "",
        f"Run {meta['date']} on Python {meta['python']}, {meta['cores']} cores "
        f"({meta['machine']}), {meta['pytest']}, baseline {meta['baseline']}; "
        f"the whole benchmark took {meta['total_seconds']:.0f}s. "
        "Wall times include interpreter start-up; each tool runs on its own copy of "
        "the generated project. Ratios below 1 mean ours is faster/smaller. "
        + _tracers(out.version),
        "",
    ]
    for b in benches:
        md += [f"## {b.info.name} project", "", _describe(b), "", md_table(table_rows(b)), ""]
        md += [f"- {e}" for e in _errors(b)] + ([""] if _errors(b) else [])
    out.results_md.write_text("\n".join(md))
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    out.results_json.write_text(
        json.dumps({"meta": meta, "projects": [b.to_json() for b in benches]}, indent=1)
    )


def _venvs(tools: list[str], python: str) -> dict[str, Path]:
    """Interpreter per tool; tools whose venv fails are left out (error printed)."""
    pythons: dict[str, Path] = {}
    cache: dict[str, Path | None] = {}
    for tool in tools:
        name = TOOL_SPECS[tool].venv
        if name not in cache:
            try:
                cache[name] = venvs.ensure(name, python).python
            except venvs.VenvError as exc:
                _log(f"  error: venv {name}: {exc}")
                cache[name] = None
        py = cache[name]
        if py is not None:
            pythons[tool] = py
    return pythons


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small project only")
    parser.add_argument("--project", choices=["small", "large", "all"], default="all")
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help="comma-separated subset of plain,testmon,ours"
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter to benchmark (default: this one); another version gets its own "
        "venvs and results-pyXY.md",
    )
    args = parser.parse_args(argv)
    started = time.time()
    try:
        out = Outputs.for_version(venvs.python_version(args.python))
    except venvs.VenvError as exc:
        _log(f"error: --python: {exc}")
        return 2
    projects = (
        ["small"]
        if args.quick
        else (["small", "large"] if args.project == "all" else [args.project])
    )
    tools = [t for t in args.tools.split(",") if t in TOOL_SPECS]
    out.logs.mkdir(parents=True, exist_ok=True)
    _log(f"== venvs (Python {out.version})")
    pythons = _venvs(tools, args.python)
    benches = []
    for name in projects:
        _log(f"== {name} project")
        info = gen_projects.generate(name)
        bench = ProjectBench(info, tools, REPS[name], pythons, out)
        try:
            bench.run()
        except Exception as exc:  # noqa: BLE001 - report it, go on with what was measured
            _log(f"  error: {name} benchmark stopped: {type(exc).__name__}: {exc}")
        benches.append(bench)
    write_reports(benches, started, out)
    print()
    for b in benches:
        print(_describe(b))
        print(text_table(table_rows(b)))
        for e in _errors(b):
            print(f"  {e}")
        print()
    print(
        f"total {time.time() - started:.0f}s; wrote "
        f"{out.results_md.relative_to(BENCH_DIR.parent)} and "
        f"{out.results_json.relative_to(BENCH_DIR.parent)}; logs in "
        f"{out.logs.relative_to(BENCH_DIR.parent)}/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
