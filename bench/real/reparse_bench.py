"""A save's parse on the real projects: the whole file against the one body it changed.

For each project of the real bench, the file its edit changes (bench/real/projects.py)
is parsed as the waiting standby parses a save: the last content's parse is known
(the standby parsed it while it waited), then the edit's N-th variant arrives.
Timed, alternating, per variant: `blocks.parse_python` of the new content, with
the memo of function bodies warm as the standby has it (what a save cost before
core/reparse.py), and `reparse.reparse_python` from the last parse. Every answer
is checked against the whole parse.

Usage: ``python bench/real/reparse_bench.py [--project NAME[,NAME]] [--saves N]``
(the checkouts from `make bench-real`); prints a table with medians and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent.parent)]

import fetch  # noqa: E402
from projects import PROJECTS  # noqa: E402

from testmon_watch.core.blocks import parse_python  # noqa: E402
from testmon_watch.core.changes import module_name_for  # noqa: E402
from testmon_watch.core.reparse import reparse_python  # noqa: E402


def bench(name: str, saves: int) -> tuple[str, int, float, float, int]:
    project = PROJECTS[name]
    root = fetch.REAL_DIR / name / "ours"
    if not root.is_dir():
        raise SystemExit(f"no checkout at {root}: run `make bench-real` first")
    spec = fetch.edit_spec(project, root)
    path = root / project.edit.path
    original = path.read_text(encoding="utf-8")
    module, is_package = module_name_for(path)
    contents = [original.encode()] + [
        original.replace(spec.marker, spec.template.format(n=n), 1).encode()
        for n in range(1, saves + 1)
    ]
    whole_ms: list[float] = []
    splice_ms: list[float] = []
    answered = 0
    last = contents[0]
    last_blocks = parse_python(last, module, is_package)
    for content in contents[1:]:
        start = time.perf_counter()
        whole = parse_python(content, module, is_package)
        whole_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        spliced = reparse_python(last, last_blocks, content, module, is_package)
        splice_ms.append((time.perf_counter() - start) * 1000)
        if spliced is not None:
            answered += 1
            if spliced != whole:
                raise SystemExit(f"{name}: the reparse differs from the whole parse")
        last, last_blocks = content, whole
    lines = original.count("\n")
    return (
        f"{project.edit.path} ({lines:,} lines)",
        answered,
        statistics.median(whole_ms),
        statistics.median(splice_ms),
        len(contents) - 1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=",".join(PROJECTS))
    parser.add_argument("--saves", type=int, default=15)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {args.saves} saves per project, medians\n")
    print("| project | edited file | reparsed | whole parse ms | reparse ms | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for name in [n for n in args.project.split(",") if n]:
        where, answered, whole, splice, saves = bench(name, args.saves)
        print(
            f"| {name} | {where} | {answered}/{saves} | {whole:.1f} | {splice:.1f} "
            f"| {whole / splice:.1f}x |"
        )


if __name__ == "__main__":
    main()
