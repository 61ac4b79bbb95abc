"""Time one pytest run in a project copy and read what it selected from its output."""

from __future__ import annotations

import os
import re
import resource
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from gen_projects import EditSpec

DATA_FILE = ".testmondata"
# "==== 4 passed, 296 deselected, 1 warning in 0.52s ====" or "-q" form without the bars.
_SUMMARY_RE = re.compile(
    r"^=*\s*(?P<body>(?:\d+ \w+(?:, )?)+|no tests ran)"
    r"(?: in [\d.]+s(?: \([\d:]+\))?)?\s*=*$"
)
_COUNT_RE = re.compile(
    r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed"
    r"|warnings?|rerun)"
)


@dataclass
class RunResult:
    """One timed pytest invocation."""

    seconds: float
    returncode: int
    cpu_seconds: float = 0.0  # user+sys of the pytest process: less sensitive to a busy machine
    counts: dict[str, int] = field(default_factory=dict)
    log: str = ""
    error: str = ""  # one line when the run failed in a way that makes it meaningless
    notes: list[str] = field(default_factory=list)  # the tools' own header/summary lines

    @property
    def selected(self) -> int:
        """Tests that actually ran: passed + failed + errors (+ skips/xfails)."""
        c = self.counts
        return sum(
            c.get(k, 0) for k in ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
        )

    @property
    def ok(self) -> bool:
        """True when the run produced a usable result."""
        return not self.error


def parse_summary(output: str) -> dict[str, int] | None:
    """Counts from pytest's final summary line, or None if there is none.

    "errors"/"warnings" are normalised to "error"/"warning"; "no tests ran"
    gives an empty dict.
    """
    for line in reversed(output.splitlines()):
        m = _SUMMARY_RE.match(line.strip())
        if not m:
            continue
        counts: dict[str, int] = {}
        for num, word in _COUNT_RE.findall(m.group("body")):
            key = word.rstrip("s") if word in ("errors", "warnings") else word
            counts[key] = counts.get(key, 0) + int(num)
        return counts
    return None


TOOL_LINE_PREFIXES = ("testmon:", "testmon-watch")
WARNING_WORDS = ("cannot", "error", "running without", "not recording", "warning")


def tool_notes(output: str) -> list[str]:
    """Lines the selection tools print about themselves (header, summary, warnings)."""
    notes = [ln.strip() for ln in output.splitlines() if ln.startswith(TOOL_LINE_PREFIXES)]
    return [n[:200] for n in notes[:10]]


def warnings_in(notes: list[str]) -> list[str]:
    """The notes that say the tool is degraded (cannot use its data, etc.)."""
    return [n for n in notes if any(w in n.lower() for w in WARNING_WORDS)]


def _first_error_line(output: str) -> str:
    """The most telling line of a failed run's output, for a one-line report."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for pattern in ("Error", "error:", "ERROR", "Traceback"):
        for ln in reversed(lines):
            if pattern in ln and not ln.startswith("="):
                return ln[:200]
    return lines[-1][:200] if lines else "no output"


def run_pytest(
    python: Path, cwd: Path, args: list[str], log: Path, timeout: float = 1800
) -> RunResult:
    """Run ``python -m pytest ARGS`` in cwd, timing it and logging its output."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "PYTHONPATH",
            "PYTEST_ADDOPTS",
            "PYTEST_PLUGINS",
            "VIRTUAL_ENV",
            "COVERAGE_PROCESS_START",
            "PYTHONDONTWRITEBYTECODE",
        )
    }
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [str(python), "-m", "pytest", *args]
    log.parent.mkdir(parents=True, exist_ok=True)
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        seconds = time.perf_counter() - start
        output, code = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        seconds = time.perf_counter() - start
        out = exc.stdout
        output = out.decode(errors="replace") if isinstance(out, bytes) else (out or "")
        code = -1
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    log.write_text(f"$ cd {cwd} && {' '.join(cmd)}\n# exit {code}, {seconds:.3f}s\n{output}")
    counts = parse_summary(output)
    result = RunResult(seconds, code, cpu, counts or {}, str(log), notes=tool_notes(output))
    if code == -1:
        result.error = f"timed out after {timeout:.0f}s"
    elif counts is None:
        result.error = f"exit {code}, no pytest summary: {_first_error_line(output)}"
    elif code not in (0, 1, 5) or counts.get("error", 0) or counts.get("failed", 0):
        result.error = f"exit {code}, {counts}: {_first_error_line(output)}"
    return result


def data_size(root: Path) -> int:
    """Bytes of .testmondata plus its -wal/-shm/-journal companions in root."""
    total = 0
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = root / (DATA_FILE + suffix)
        if path.exists():
            total += path.stat().st_size
    return total


def remove_data(root: Path) -> None:
    """Delete .testmondata (and companions) so the next run is a full first run."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        (root / (DATA_FILE + suffix)).unlink(missing_ok=True)


def fresh_copy(src: Path, dst: Path) -> Path:
    """Copy the generated project to dst (mtimes preserved, so warm .pyc stay valid)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".pytest_cache", DATA_FILE + "*"))
    return dst


def apply_edit(root: Path, edit: EditSpec, n: int) -> None:
    """Apply the n-th variant of the edit (n >= 1), replacing the previous variant.

    The file's mtime is moved forward by at least two seconds so that neither
    mtime-based change detection nor Python's .pyc check can miss the edit.
    """
    path = root / edit.path
    text = path.read_text()
    old = edit.marker if n == 1 else edit.variant(n - 1)
    if text.count(old) != 1:
        raise RuntimeError(f"edit marker {old!r} not found exactly once in {path}")
    before = path.stat().st_mtime_ns
    path.write_text(text.replace(old, edit.variant(n)))
    stamp = max(time.time_ns(), before + 2_000_000_000)
    os.utime(path, ns=(stamp, stamp))


def median(values: list[float]) -> float:
    """Median of values (0.0 for none)."""
    return statistics.median(values) if values else 0.0
