"""The whole-process phases on one real project: first run, no-change rerun, edit rerun.

Runs (measure.run_pytest) in each tool's checkout and venv (real_venvs):

* ``plain``: ``pytest -p no:pytest-testmon`` in the testmon venv and checkout;
* ``testmon``: ``pytest --testmon`` with pytest-testmon 2.2.0;
* ``ours``: ``pytest --testmon`` with this repo installed;
* ``bare`` / ``bare-ours``: the minimal pytest start in that project, in the testmon
  resp. ours venv with the plugin disabled: the project's options and an empty
  folder of the checkout as the only path, so pytest reads the project's
  configuration, loads its plugins and the root conftest.py, collects nothing and
  exits 5. A no-change rerun cannot beat it by much.

Tools alternate within each repetition (the order rotates from one repetition to
the next) so that a slow spell of this noisy machine hits all of them; ratios are
taken per repetition and their median is reported ("median of pairs").
A suite that fails some tests is still measured: a run is usable when pytest
printed its summary and exited 0 or 1.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

import fetch
from gen_projects import EditSpec
from measure import RunResult, apply_edit, data_size, remove_data, run_pytest
from projects import RealProject

EMPTY_DIR = ".bench-empty"  # the bare start's only path, inside each checkout


@dataclass(frozen=True)
class Reps:
    """Repetitions per phase and a per-run timeout in seconds."""

    full: int
    nochange: int
    edit: int
    timeout: float = 1800.0


@dataclass(frozen=True)
class Runner:
    """How one tool runs pytest: interpreter, checkout and its own arguments."""

    name: str
    python: Path
    root: Path
    args: tuple[str, ...]
    bare: bool = False  # the bare start: no test paths, the empty folder instead


def usable(res: RunResult) -> bool:
    """The run printed pytest's summary and exited 0, 1 (some failures) or 5 (none ran)."""
    return res.returncode in (0, 1, 5) and (res.ok or bool(res.counts))


@dataclass
class PhaseRuns:
    """The runs of one phase: for each repetition, the result of each tool."""

    reps: list[dict[str, RunResult]] = field(default_factory=list)

    def seconds(self, tool: str) -> list[float]:
        return [r[tool].seconds for r in self.reps if tool in r and usable(r[tool])]

    def median(self, tool: str) -> float | None:
        values = self.seconds(tool)
        return statistics.median(values) if values else None

    def pair_ratio(self, num: str, den: str, base: str | None = None) -> float | None:
        """Median over repetitions of (num - base) / (den - base) (base omitted: 0)."""
        ratios = []
        for r in self.reps:
            if not all(t in r and usable(r[t]) for t in (num, den, *([base] if base else []))):
                continue
            b = r[base].seconds if base else 0.0
            d = r[den].seconds - b
            if d > 0:
                ratios.append((r[num].seconds - b) / d)
        return statistics.median(ratios) if ratios else None

    def selected(self, tool: str) -> list[int]:
        return [r[tool].selected for r in self.reps if tool in r and usable(r[tool])]

    def to_json(self) -> list[dict[str, object]]:
        return [{t: asdict(res) for t, res in r.items()} for r in self.reps]


@dataclass
class ProjectRuns:
    """Everything the pytest phases measured on one project."""

    suite: dict[str, RunResult] = field(default_factory=dict)  # untimed warm-up, per checkout
    full: PhaseRuns = field(default_factory=PhaseRuns)
    nochange: PhaseRuns = field(default_factory=PhaseRuns)
    edit: PhaseRuns = field(default_factory=PhaseRuns)
    data_bytes: dict[str, int] = field(default_factory=dict)
    edit_marker: str = ""
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "suite": {k: asdict(v) for k, v in self.suite.items()},
            "full": self.full.to_json(),
            "nochange": self.nochange.to_json(),
            "edit": self.edit.to_json(),
            "data_bytes": self.data_bytes,
            "edit_marker": self.edit_marker,
            "errors": self.errors,
        }


def _rotate(names: list[str], rep: int) -> list[str]:
    k = rep % len(names)
    return names[k:] + names[:k]


class PhaseBench:
    """Runs the three phases for one project with the given runners."""

    def __init__(
        self, project: RealProject, pythons: dict[str, Path], reps: Reps, log_dir: Path
    ) -> None:
        self.project = project
        self.reps = reps
        self.log_dir = log_dir
        self.roots = {v: fetch.checkout(project, v) for v in pythons}
        opts = tuple(project.pytest_args)
        paths = tuple(project.test_paths)
        tm, ours = pythons["testmon"], pythons["ours"]
        troot, oroot = self.roots["testmon"], self.roots["ours"]
        self.runners = {
            "plain": Runner("plain", tm, troot, ("-p", "no:pytest-testmon", *opts, *paths)),
            "testmon": Runner(
                "testmon", tm, troot, ("--testmon", *opts, *project.testmon_args, *paths)
            ),
            "ours": Runner("ours", ours, oroot, ("--testmon", *opts, *paths)),
            "bare": Runner("bare", tm, troot, ("-p", "no:pytest-testmon", *opts, EMPTY_DIR), True),
            "bare-ours": Runner(
                "bare-ours", ours, oroot, ("-p", "no:testmon_watch", *opts, EMPTY_DIR), True
            ),
        }
        self.out = ProjectRuns()

    def _run(self, tool: str, phase: str, rep: int) -> RunResult:
        r = self.runners[tool]
        if r.bare:
            (r.root / EMPTY_DIR).mkdir(exist_ok=True)
        log = self.log_dir / f"{self.project.name}-{tool}-{phase}-{rep}.log"
        res = run_pytest(r.python, r.root, list(r.args), log, self.reps.timeout)
        note = f"{res.selected} run" if usable(res) else f"FAILED: {res.error}"
        if usable(res) and (res.counts.get("failed") or res.counts.get("error")):
            note += f" ({res.counts.get('failed', 0)} failed, {res.counts.get('error', 0)} errors)"
        print(f"  {self.project.name} {tool:9} {phase:8} #{rep}: {res.seconds:7.2f}s  {note}")
        if not usable(res):
            self.out.errors.append(f"{phase} #{rep} {tool}: {res.error} (log: {res.log})")
        return res

    def warm(self) -> None:
        """One untimed plain run per checkout: writes .pyc files and checks the suite."""
        for tool, runner in (
            ("plain", "plain"),
            ("ours", "ours"),
        ):
            root = self.runners[runner].root
            fetch.reset(self.project, root)
            python = self.runners[runner].python
            no = "no:pytest-testmon" if tool == "plain" else "no:testmon_watch"
            args = ["-p", no, *self.project.pytest_args, *self.project.test_paths]
            log = self.log_dir / f"{self.project.name}-warm-{tool}.log"
            res = run_pytest(python, root, args, log, self.reps.timeout)
            fetch.check_rootdir(root, log.read_text(errors="replace"))
            self.out.suite[tool] = res
            print(
                f"  {self.project.name} suite ({tool} checkout, untimed): "
                f"{res.counts or res.error} in {res.seconds:.1f}s"
            )

    def run(self) -> ProjectRuns:
        self.warm()
        full_tools = ["plain", "testmon", "ours"]
        for rep in range(1, self.reps.full + 1):
            runs: dict[str, RunResult] = {}
            for tool in _rotate(full_tools, rep):
                remove_data(self.runners[tool].root)
                runs[tool] = self._run(tool, "full", rep)
            self.out.full.reps.append(runs)
        for tool in ("testmon", "ours"):
            self.out.data_bytes[tool] = data_size(self.runners[tool].root)
        for rep in range(1, self.reps.nochange + 1):
            runs = {}
            for tool in _rotate(["bare", "testmon", "bare-ours", "ours"], rep):
                runs[tool] = self._run(tool, "nochange", rep)
            self.out.nochange.reps.append(runs)
        spec: EditSpec = fetch.edit_spec(self.project, self.roots["ours"])
        self.out.edit_marker = spec.marker.strip()
        for rep in range(1, self.reps.edit + 1):
            runs = {}
            for tool in _rotate(["testmon", "ours"], rep):
                apply_edit(self.runners[tool].root, spec, rep)
                runs[tool] = self._run(tool, "edit", rep)
            self.out.edit.reps.append(runs)
        for root in self.roots.values():
            fetch.reset(self.project, root)
        return self.out
