"""The watch loop on one real project: ours against pytest-watcher + pytest-testmon.

Reuses bench/watch_latency.py's ``bench_one`` (its method, its output patterns,
its process-group handling) on the tool's own checkout, reset first (no data
file, the edited file as shipped), with the project's pytest options:

* ours: ``testmon-watch --no-tui -v --root <ours checkout> -- <options>``;
* ptw: ``ptw --now <testmon checkout> --testmon -v <options>`` (pytest-watcher
  0.6.3, watchdog<6, pytest-testmon 2.2.0).

Each round runs both tools, one after the other (the order alternates between
rounds); within a round, after the initial full run and one untimed warm-up
save, each timed save rewrites the edited function's body (fetch.edit_spec:
a version no earlier save wrote, as a developer's edit is). Reported: median and p90 of
save-to-first-result and save-to-done over all rounds' saves, and the median
over rounds of ptw's median / ours'.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import fetch
import watch_latency
from projects import RealProject
from watch_projects import Project


@dataclass
class WatchRuns:
    """Every round's result per tool."""

    rounds: list[dict[str, watch_latency.Result]] = field(default_factory=list)

    def values(self, tool: str, key: str) -> list[float]:
        return [
            v
            for r in self.rounds
            if tool in r
            for s in r[tool].saves
            if (v := getattr(s, key)) is not None
        ]

    def stat(self, tool: str, key: str, q: float) -> float | None:
        """Median (q=0.5) or nearest-rank percentile of a latency over all saves."""
        values = sorted(self.values(tool, key))
        if not values:
            return None
        if q == 0.5:
            return statistics.median(values)
        return values[max(0, math.ceil(q * len(values)) - 1)]

    def round_ratio(self, key: str) -> float | None:
        """Median over rounds of ptw's median / ours' median."""
        ratios = []
        for r in self.rounds:
            o, p = r.get("ours"), r.get("ptw")
            if o and p and o.saves and p.saves:
                om = statistics.median([v for s in o.saves if (v := getattr(s, key)) is not None])
                pm = statistics.median([v for s in p.saves if (v := getattr(s, key)) is not None])
                if om > 0:
                    ratios.append(pm / om)
        return statistics.median(ratios) if ratios else None

    def selected(self, tool: str) -> list[int]:
        return sorted(
            {s.selected for r in self.rounds if tool in r for s in r[tool].saves if s.selected}
        )

    def to_json(self) -> list[dict[str, object]]:
        return [
            {
                t: {**res.__dict__, "saves": [s.__dict__ for s in res.saves], "warmup": None}
                for t, res in r.items()
            }
            for r in self.rounds
        ]


def run(
    project: RealProject,
    pythons: dict[str, Path],
    rounds: int,
    saves: int,
    pause: float,
    expected: int,
    tests: int,
) -> WatchRuns:
    """``rounds`` rounds of both watchers, ``saves`` timed saves each."""
    out = WatchRuns()
    ours_root = fetch.checkout(project, "ours")
    spec = fetch.edit_spec(project, ours_root)
    tools = {"ours": ("ours", ours_root), "ptw": ("testmon", fetch.checkout(project, "testmon"))}
    for rnd in range(1, rounds + 1):
        wp = Project(
            name=f"real-{project.name}-{rnd}",
            root=str(ours_root),
            tests=tests,
            edit_path=spec.path,
            version_a=spec.marker,
            version_b=spec.variant(1),
            unique_template=spec.template,
            expected_selected=expected,
        )
        results: dict[str, watch_latency.Result] = {}
        order = ["ours", "ptw"] if rnd % 2 else ["ptw", "ours"]
        for tool in order:
            venv, root = tools[tool]
            fetch.reset(project, root)
            print(f"  {project.name} watch round {rnd}: {tool} ...", flush=True)
            results[tool] = watch_latency.bench_one(
                wp,
                tool,
                pythons[venv],
                saves,
                0,
                pause,
                copy=root,
                pytest_args=[
                    *project.pytest_args,
                    *(project.testmon_args if tool == "ptw" else ()),
                    *project.test_paths,
                ],
            )
            fetch.reset(project, root)
        out.rounds.append(results)
    return out
