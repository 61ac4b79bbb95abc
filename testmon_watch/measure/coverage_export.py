"""Export the recorded executed lines as a standard coverage.py data file.

Every test that is still valid (not pending) becomes one coverage context named
by its node id, holding the lines its setup, call and teardown executed. Every
shared unit (`import:<path>`, `collect:<path>`, `fixture:...`, `session`)
becomes one context named by its key. The union is what the whole suite
executes, including tests deselected in this session, whose lines come from the
runs that last recorded them.

Which lines are valid, and whose they are, is `core/line_attribution.py`'s
answer, the same one the app's coverage view shows. Only the public
`coverage.CoverageData` API is used, so `coverage report`,
`coverage html --show-contexts` and `coverage xml` read the result as usual.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import coverage

from testmon_watch.core.db import Database
from testmon_watch.core.keys import ContextKey, ContextKind
from testmon_watch.core.line_attribution import ContextLines, attribute_lines


@dataclass(frozen=True)
class ExportSummary:
    path: Path  # the written data file
    files: int  # source files in the written data file (what `coverage report` lists)
    contexts: int  # contexts written (tests and shared units with at least one line)
    merged_deselected: int  # valid tests whose lines came from earlier runs (not run this time)
    tests: int = 0  # test contexts among `contexts`
    skipped_pending: int = 0  # tests left out: their recorded lines are out of date

    def message(self, cwd: Path | None = None) -> str:
        """One line for the terminal: "testmon-watch: wrote .coverage (...)"."""
        name = _display_path(self.path, cwd)
        parts = [
            f"{self.files} file{'s' if self.files != 1 else ''}",
            f"{self.tests} test{'s' if self.tests != 1 else ''}",
        ]
        if self.merged_deselected:
            plural = "s" if self.merged_deselected != 1 else ""
            parts.append(
                f"lines of {self.merged_deselected} deselected test{plural} "
                "merged from earlier runs"
            )
        if self.skipped_pending:
            parts.append(
                f"{self.skipped_pending} out-of-date "
                f"test{'s' if self.skipped_pending != 1 else ''} left out"
            )
        return f"testmon-watch: wrote {name} ({', '.join(parts)})"


class SourceError(ValueError):
    """A `source` entry that names no file, directory or package under the root."""


def _display_path(path: Path, cwd: Path | None) -> str:
    base = cwd if cwd is not None else Path.cwd()
    try:
        return os.path.relpath(path, base) if path.is_absolute() else str(path)
    except ValueError:  # other drive on Windows
        return str(path)


def resolve_source(root: Path, source: Iterable[str]) -> list[str]:
    """Turn `--source`-like entries into '/'-separated paths relative to `root`.

    An entry is a file or directory path (relative to root, or absolute inside
    it), or a dotted package/module name: `a.b` is looked up as `a/b`, `a/b.py`,
    `src/a/b` and `src/a/b.py`. Returns "" for the root itself. Raises
    SourceError for an entry that matches nothing.
    """
    root = Path(os.path.realpath(root))
    result: list[str] = []
    for entry in source:
        entry = entry.strip()
        if not entry:
            continue
        found = _resolve_one(root, entry)
        if found is None:
            raise SourceError(
                f"{entry!r} is neither a file, a directory nor a package under {root}"
            )
        result.append(found)
    return result


def _resolve_one(root: Path, entry: str) -> str | None:
    candidates: list[Path] = [Path(entry) if os.path.isabs(entry) else root / entry]
    if _is_dotted(entry):
        rel = Path(*entry.split("."))
        for base in (root, root / "src"):
            candidates += [base / rel, (base / rel).with_name(rel.name + ".py")]
    for candidate in candidates:
        if candidate.exists():
            real = Path(os.path.realpath(candidate))
            try:
                rel_path = real.relative_to(root).as_posix()
            except ValueError:
                continue  # outside the project: nothing of it is recorded
            return "" if rel_path == "." else rel_path
    return None


def _is_dotted(entry: str) -> bool:
    return all(part.isidentifier() for part in entry.split("."))


def export_coverage(
    db: Database,
    env_id: int,
    root: Path,
    out_path: Path,
    source: Sequence[str] = (),
    ran: Collection[str] | None = None,
) -> ExportSummary:
    """Write `out_path` as a coverage.py data file (lines, one context per test and unit).

    `source` limits the files like coverage's `--source` (see `resolve_source`;
    empty: every project file). `ran` holds the node ids that ran in this
    session; valid tests outside it are counted as merged from earlier runs.
    Pending tests are left out: their code changed since their lines were
    recorded. So are shared units whose recorded code no longer exists, and
    files that are gone or no longer parse.
    """
    root = Path(os.path.realpath(root))
    out_path = Path(out_path)
    if not out_path.is_absolute():
        out_path = Path.cwd() / out_path
    attribution = attribute_lines(db, env_id, root, resolve_source(root, source))
    ran_set = set(ran) if ran is not None else None
    merged = sum(
        1 for test in attribution.tests if ran_set is not None and test.key.target not in ran_set
    )
    contexts = list(attribution.contexts())
    write_data_file(out_path, contexts, attribution.files)
    return ExportSummary(
        path=out_path,
        # Every file with a recorded line, empty modules included: their one
        # line is 0 on 3.11+ and 1 on 3.10, and either way coverage.py lists them.
        files=len({path for c in contexts for path, lines in c.lines.items() if lines}),
        contexts=len(contexts),
        merged_deselected=merged,
        tests=sum(1 for context in contexts if context.key.kind is ContextKind.TEST),
        skipped_pending=len(attribution.pending),
    )


def context_name(key: ContextKey) -> str:
    """The coverage context of a recorded context: a test's node id, else the unit's key."""
    return key.target if key.kind is ContextKind.TEST else str(key)


def add_contexts(
    data: coverage.CoverageData, contexts: Iterable[ContextLines], files: Mapping[str, str]
) -> None:
    """Add each context's lines to `data` under its own name (`files`: path -> filename).

    Line 0 marks a module that ran without a line of its own (an empty
    `__init__.py`); coverage.py records it the same way and reports no line for it.
    """
    added = False
    for context in contexts:
        data.set_context(context_name(context.key))
        data.add_lines({files[path]: sorted(lines) for path, lines in context.lines.items()})
        added = True
    if not added:
        data.add_lines({})  # an empty data file, but one of lines


def write_data_file(
    out_path: Path, contexts: Iterable[ContextLines], files: Mapping[str, str]
) -> None:
    """Write `out_path` as a coverage.py data file holding `contexts`, in one step.

    Written aside, then renamed over: never a half-written `.coverage`. The
    temporary name must not match `.coverage.*`, which `coverage combine` takes.
    """
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}-testmon-{os.getpid()}.tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        data = coverage.CoverageData(basename=str(tmp))
        add_contexts(data, contexts, files)
        data.write()
        if out_path.exists() or out_path.is_symlink():
            out_path.unlink()
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            tmp.unlink()
