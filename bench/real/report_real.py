"""The markdown report of the real-project benchmark (bench/results-real.md)."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

from phases import ProjectRuns, usable
from projects import RealProject
from watch_real import WatchRuns

TARGET_OVERHEAD = 0.5  # ours' first-run overhead / pytest-testmon's
TARGET_NOCHANGE = 1.2  # ours' no-change rerun / a bare pytest start
TARGET_FIRST_MS = 150.0  # watch loop: save to first result, median
TARGET_SPEEDUP = 10.0  # ptw / ours, save to first result


@dataclass
class ProjectReport:
    """What one project's run produced."""

    project: RealProject
    runs: ProjectRuns | None
    watch: WatchRuns | None
    error: str = ""


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else (" **met**" if ok else " **MISSED**")


def _counts(values: list[int]) -> str:
    return "-" if not values else "/".join(map(str, sorted(set(values))))


def suite_line(rep: ProjectReport) -> str:
    """Tests and outcome of plain pytest (the untimed warm-up run) in the testmon checkout."""
    if rep.runs is None or "plain" not in rep.runs.suite:
        return "-"
    res = rep.runs.suite["plain"]
    c = res.counts
    parts = [f"{v} {k}" for k, v in c.items() if k not in ("warning", "deselected")]
    return f"{', '.join(parts) or res.error} in {res.seconds:.1f} s"


def project_table(reps: list[ProjectReport]) -> list[str]:
    lines = [
        "| project | version | sdist sha256 | layout | covers | plain pytest (untimed warm-up) "
        "| edited function |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in reps:
        p = r.project
        lines.append(
            f"| {p.name} | {p.version} | `{p.sha256[:16]}…` | {p.layout} | {p.covers} | "
            f"{suite_line(r)} | `{p.edit.path}::{p.edit.function}` |"
        )
    return lines


def results_table(r: ProjectReport) -> list[str]:
    lines = [
        "| measure | baseline | pytest-testmon 2.2.0 | ours | ours vs pytest-testmon "
        "(median of pairs) | target |",
        "|---|---|---|---|---|---|",
    ]
    runs, watch = r.runs, r.watch
    if runs is not None:
        f = runs.full
        over = f.pair_ratio("ours", "testmon", base="plain")
        ok_over = None if over is None else over <= TARGET_OVERHEAD
        lines.append(
            f"| first run s (baseline: plain pytest) | {_s(f.median('plain'))} | "
            f"{_s(f.median('testmon'))} | {_s(f.median('ours'))} | overhead {_x(over)} | "
            f"overhead <= {TARGET_OVERHEAD}x{_verdict(ok_over)} |"
        )
        n = runs.nochange
        ob = n.pair_ratio("ours", "bare-ours")
        tb = n.pair_ratio("testmon", "bare")
        lines.append(
            f"| no-change rerun s (baseline: bare start; in ours' venv "
            f"{_s(n.median('bare-ours'))}) | {_s(n.median('bare'))} | {_s(n.median('testmon'))} "
            f"({_x(tb)} bare) | {_s(n.median('ours'))} ({_x(ob)} bare) | "
            f"{_x(n.pair_ratio('ours', 'testmon'))} | <= {TARGET_NOCHANGE}x bare"
            f"{_verdict(None if ob is None else ob <= TARGET_NOCHANGE)} |"
        )
        e = runs.edit
        st, so = e.selected("testmon"), e.selected("ours")
        fewer = None if not st or not so else max(so) <= min(st)
        lines.append(
            f"| one-function edit rerun s (tests run) | | {_s(e.median('testmon'))} "
            f"({_counts(st)}) | {_s(e.median('ours'))} ({_counts(so)}) | "
            f"{_x(e.pair_ratio('ours', 'testmon'))} | tests run <= pytest-testmon's"
            f"{_verdict(fewer)} |"
        )
        dt, do = runs.data_bytes.get("testmon"), runs.data_bytes.get("ours")
        lines.append(
            f"| data file KiB | | {'-' if dt is None else dt // 1024} | "
            f"{'-' if do is None else do // 1024} | "
            f"{_x(do / dt if do is not None and dt else None)} | <= pytest-testmon's"
            f"{_verdict(None if do is None or not dt else do <= dt)} |"
        )
    if watch is not None:
        om, pm = watch.stat("ours", "first_ms", 0.5), watch.stat("ptw", "first_ms", 0.5)
        ratio = watch.round_ratio("first_ms")
        saves = len(watch.values("ours", "done_ms")), len(watch.values("ptw", "done_ms"))
        ok_ms = None if om is None else om <= TARGET_FIRST_MS
        ok_x = None if ratio is None else ratio >= TARGET_SPEEDUP
        lines.append(
            f"| watch: save→first result ms, median / p90 (saves: ours {saves[0]}, "
            f"ptw {saves[1]}; tests run: ours {_counts(watch.selected('ours'))}, ptw "
            f"{_counts(watch.selected('ptw'))}) | | {_ms(pm)} / "
            f"{_ms(watch.stat('ptw', 'first_ms', 0.9))} (pytest-watcher 0.6.3) | {_ms(om)} / "
            f"{_ms(watch.stat('ours', 'first_ms', 0.9))} | {_x(ratio)} faster | <= "
            f"{TARGET_FIRST_MS:.0f} ms{_verdict(ok_ms)}, >= {TARGET_SPEEDUP:.0f}x{_verdict(ok_x)} |"
        )
        lines.append(
            f"| watch: save→done ms, median / p90 | | {_ms(watch.stat('ptw', 'done_ms', 0.5))} / "
            f"{_ms(watch.stat('ptw', 'done_ms', 0.9))} | "
            f"{_ms(watch.stat('ours', 'done_ms', 0.5))} / "
            f"{_ms(watch.stat('ours', 'done_ms', 0.9))} | {_x(watch.round_ratio('done_ms'))} "
            "faster | |"
        )
    return lines


def summary_table(reps: list[ProjectReport]) -> list[str]:
    """One row per project, one column per target: what the README shows."""
    lines = [
        "| project (tests) | first-run overhead, ours / pytest-testmon's (target <= 0.5) "
        "| no-change rerun / bare start (<= 1.2) | edit: tests run, ours / pytest-testmon "
        "| data file, ours / pytest-testmon's (<= 1) | save→first result ms, ours vs "
        "pytest-watcher (<= 150, >= 10x) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in reps:
        suite = r.runs.suite.get("plain") if r.runs is not None else None
        tests = f" ({suite.selected:,})" if suite is not None and usable(suite) else ""
        cells = ["-"] * 5
        if r.runs is not None:
            over = r.runs.full.pair_ratio("ours", "testmon", base="plain")
            nochange = r.runs.nochange.pair_ratio("ours", "bare-ours")
            st, so = r.runs.edit.selected("testmon"), r.runs.edit.selected("ours")
            dt, do = r.runs.data_bytes.get("testmon"), r.runs.data_bytes.get("ours")
            cells[0] = _x(over)
            cells[1] = _x(nochange)
            cells[2] = f"{_counts(so)} / {_counts(st)}"
            cells[3] = _x(do / dt if do is not None and dt else None)
        if r.watch is not None:
            om, pm = r.watch.stat("ours", "first_ms", 0.5), r.watch.stat("ptw", "first_ms", 0.5)
            cells[4] = f"{_ms(om)} vs {_ms(pm)} ({_x(r.watch.round_ratio('first_ms'))})"
        if r.error and all(c == "-" for c in cells):
            cells = ["failed: " + r.error[:60], "", "", "", ""]
        lines.append(f"| {r.project.name}{tests} | " + " | ".join(cells) + " |")
    return lines


def notes(r: ProjectReport) -> list[str]:
    out = [f"FAILED: {r.error}"] if r.error else []
    if r.runs is not None:
        out += r.runs.errors[:10]
        for phase in ("full", "nochange", "edit"):
            for rep in getattr(r.runs, phase).reps:
                for tool, res in rep.items():
                    if usable(res) and (res.counts.get("failed") or res.counts.get("error")):
                        out.append(f"{phase} {tool}: {res.counts} (the suite's own failures)")
                        break
        ran = {t: r.runs.full.selected(t) for t in ("plain", "testmon", "ours")}
        if len({n for v in ran.values() for n in v}) > 1:
            out.append(f"first run: tests run differ: {ran}")
        out = list(dict.fromkeys(out))
    if r.watch is not None:
        for rnd in r.watch.rounds:
            for tool, res in rnd.items():
                out += [f"watch {res.project}/{tool}: {n}" for n in res.notes[:8]]
                if res.error:
                    out.append(f"watch {res.project}/{tool}: FAILED: {res.error}")
    return out


def render(
    reps: list[ProjectReport],
    command: str,
    elapsed: float,
    load: float,
    partial: str = "",
    python: str = "",
) -> str:
    lines = ["# Real-project benchmark", ""]
    if partial:
        lines += [f"**Partial:** {partial}", ""]
    lines += [
        f"`{command}` on {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {python or platform.python_version()}; took {elapsed:.0f} s; "
        f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.",
        "",
        'Method: bench/README.md, section "Real projects". Whole-process times are '
        "medians; ratios are medians over repetitions of the per-repetition ratio, the "
        "tools alternating within each repetition.",
        "",
        "## Summary",
        "",
        *summary_table(reps),
        "",
        "## Projects",
        "",
        *project_table(reps),
    ]
    for r in reps:
        lines += ["", f"## {r.project.name} {r.project.version}", "", *results_table(r)]
        found = notes(r)
        if found:
            lines += ["", "Notes:", "", *[f"- {n}" for n in found]]
    return "\n".join(lines) + "\n"
