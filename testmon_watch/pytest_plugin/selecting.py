"""Before collection: compare disk and environment with the database, decide what runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from testmon_watch.core.changes import ChangeSet, detect_changes
from testmon_watch.core.db import Database, FileRow, TestRow, UnitRow
from testmon_watch.core.environment import Environment, environment_difference
from testmon_watch.core.reasons import EnvironmentChange, Reason, ReasonKind
from testmon_watch.core.selection import affected_tests
from testmon_watch.pytest_plugin.known_tests import KnownTest, KnownTests, name_path
from testmon_watch.wording import describe_reasons

if TYPE_CHECKING:
    # Imported where a baseline is given (--testmon-baseline): every run would pay
    # for importing core/baseline.py and core/merge.py otherwise.
    from testmon_watch.core.baseline import BaselineOutcome


@dataclass
class ReadAhead:
    """What selection reads from the data file, read before a run needs it.

    A standby child reads it while it waits for its release (planning.py): on a
    large suite reading every test's row is most of selection (packaging, 12,683
    tests: ~70 ms). It is used only if nothing has committed to the file since,
    by any process (`Database.version_stamp`); otherwise selection reads again.
    """

    stamp: tuple[int, int]
    files: dict[str, FileRow]
    tests: list[TestRow]  # every environment's, with their blobs
    units: dict[int, UnitRow]  # every environment's
    # Per environment id, its tests as a run's plan knows them before any change
    # (built here too: a pass over every test, ~5 ms for opt-einsum's 7,891).
    known: dict[int, KnownTests] = field(default_factory=dict)
    rows: dict[int, TestRow] = field(default_factory=dict)  # test id -> row

    @classmethod
    def read(cls, db: Database) -> ReadAhead:
        stamp = db.version_stamp()  # first: a commit during the reads is seen at use
        ahead = cls(stamp, db.files(), db.tests(None, with_blobs=True), db.units(None))
        path_of = {row.id: path for path, row in ahead.files.items()}
        by_env: dict[int, list[KnownTest]] = {}
        for test in ahead.tests:
            ahead.rows[test.id] = test
            by_env.setdefault(test.env_id, []).append(_known_test(test, path_of))
        ahead.known = {env_id: KnownTests(tests) for env_id, tests in by_env.items()}
        return ahead

    def take(self, db: Database) -> ReadAhead | None:
        """Itself while the file is as it was when read, else None."""
        return self if db.version_stamp() == self.stamp else None


@dataclass
class SelectionPlan:
    """The state of the data set at the start of a run and which known tests must run."""

    env_id: int
    environment: str  # its name (--testmon-env)
    files: dict[str, FileRow]
    known: KnownTests
    changes: ChangeSet
    environment_change: EnvironmentChange | None
    messages: list[str] = field(default_factory=list)
    baseline: BaselineOutcome | None = None  # what --testmon-baseline did, if given
    baseline_message: str = ""  # ... in one line (also among `messages`)

    @property
    def baseline_refused(self) -> bool:
        if self.baseline is None:
            return False
        from testmon_watch.core.baseline import BaselineRefused

        return isinstance(self.baseline, BaselineRefused)

    @property
    def selected_known(self) -> dict[str, list[Reason]]:
        """nodeid -> reasons, for every known test that must run."""
        return self.known.must_run()

    def test_files_to_skip(self) -> set[str]:
        """Known test files none of whose tests must run: not even imported."""
        changed = {c.old.path for c in self.changes.changed}
        skipped = self.known.paths() - self.known.paths_to_run() - changed
        return {p for p in skipped if not self.files[p].missing}

    def parts_to_collect(self) -> dict[str, frozenset[tuple[str, ...]]]:
        """Known test files collected in part: file -> the name paths to collect.

        The same rule as `test_files_to_skip`, further down: in a test file that
        did not change, a class or function none of whose known tests must run is
        not collected, nor a method of a class that is collected. Whatever could
        make the file grow new tests (its own import, which defines its classes,
        a conftest's collection hooks, parametrize data the module reads) is a
        dependency of every test of the file, so then all of them must run and
        the file is collected in full.

        A name path is what pytest collects by within the file, parameters left
        out: ('TestK',) and ('TestK', 'test_x') for 'f.py::TestK::test_x[1]'. The
        set holds every prefix of the paths of the tests that must run.
        """
        changed = {c.old.path for c in self.changes.changed}
        needed: dict[str, set[tuple[str, ...]]] = {}
        for nodeid in self.known.must_run():
            path, names = self.known[nodeid].path, name_path(nodeid)
            if path is not None and path not in changed and names is not None:
                needed.setdefault(path, set()).add(names)
        parts = {}
        for path, paths in needed.items():
            if self.files[path].missing:
                continue
            everything = {name_path(t.nodeid) for t in self.known.on_path(path)}
            if paths != everything - {None}:
                parts[path] = frozenset(p[:i] for p in paths for i in range(1, len(p) + 1))
        return parts

    def why_not(self, nodeid: str) -> str:
        test = self.known.get(nodeid)
        if test is None:
            return "it is new, so it would run"
        if test.reasons:
            return "it would run: " + describe_reasons(test.reasons)
        return f"up to date: nothing it executed or read changed since it {test.outcome}"


def _reasons_for(test: TestRow) -> list[Reason] | None:
    reasons: list[Reason] = list(test.pending or [])
    if test.outcome.runs_again:
        reasons.append(Reason.failed(test.outcome))
    return reasons or None


def _known_test(test: TestRow, path_of: Mapping[int, str]) -> KnownTest:
    path = path_of.get(test.file_id) if test.file_id is not None else None
    return KnownTest(test.nodeid, path, test.outcome, test.duration, _reasons_for(test))


def _known_tests(
    db: Database,
    env_id: int,
    recorded: list[TestRow] | None,
    affected: Mapping[int, list[Reason]],
    reread: bool,
    path_of: Mapping[int, str],
    ahead: ReadAhead | None,
) -> KnownTests:
    """This environment's tests with their pending marks as just written.

    When every test was read to mark the affected ones, and nothing but those
    marks was written since (no other interpreter's mark-all, no baseline
    import), that read with the new marks is what reading again would give: a
    large suite (opt-einsum: 7,891 tests) saves one full read per save. Read
    ahead, the tests are known already; only the ones just marked change.
    """
    if env_id < 0:
        return KnownTests(())
    if ahead is not None and not reread:
        marked_now = []
        for test_id, reasons in affected.items():
            row = ahead.rows.get(test_id)
            if row is not None and row.env_id == env_id:
                row.pending = reasons
                marked_now.append(_known_test(row, path_of))
        return ahead.known.get(env_id, KnownTests(())).updated(marked_now)
    if recorded is None or reread:
        rows = db.tests(env_id)
    else:
        rows = [test for test in recorded if test.env_id == env_id]
        for test in rows:
            marked = affected.get(test.id)
            if marked is not None:
                test.pending = marked
    return KnownTests(_known_test(test, path_of) for test in rows)


def plan_selection(
    db: Database,
    root: Path,
    env: Environment,
    write: bool,
    baseline: Path | None = None,
    ahead: ReadAhead | None = None,
) -> SelectionPlan:
    """Detect changes; when `write`, persist new file states and pending marks atomically.

    A `baseline` data file's records are imported then (core/baseline.py), once
    the local file states are saved and before the known tests are read, so the
    plan sees them as if recorded here. `ahead`: the rows read before, used if
    the file has not changed since (ReadAhead.take).
    """
    ahead = ahead.take(db) if ahead is not None else None
    stored_env = db.environment(env.name)
    env_change = None
    if stored_env is None:
        if write:
            with db.transaction():
                env_id = db.save_environment(env.name, env.python, env.packages)
        else:
            env_id = -1
    else:
        env_id = stored_env.id
        env_change = environment_difference(stored_env.python, stored_env.packages, env)

    files = dict(ahead.files) if ahead is not None else db.files()
    # Installed distributions are rows of their own (core/distributions.py): a
    # package change reruns the tests that used it. Another interpreter reruns all.
    changes = detect_changes(root, files, environment=env.name)
    python_changed = env_change is not None and env_change.python is not None
    # Every environment's tests, as read to mark the affected ones (None: not read).
    recorded: list[TestRow] | None = ahead.tests if ahead is not None else None
    affected: dict[int, list[Reason]] = {}
    if write and (changes.changed or changes.restat or env_change):
        if changes.changed:
            # File states are shared by all environments: mark every one's tests.
            if recorded is None:
                recorded = db.tests(None, with_blobs=True)
            tests = recorded
            units = ahead.units if ahead is not None else db.units(None)
            fingerprints = db.fingerprints_of_files(c.old.id for c in changes.changed)
            affected = affected_tests(
                tests, units, changes, fingerprints, files, packages=env_change
            ).tests
        with db.transaction():
            for change in changes.changed:
                db.save_file(change.new)
            for row in changes.restat:
                db.touch_file(row.id, row.mtime_ns, row.size)
            if affected:
                db.mark_pending(affected)
            # A module that gave no test under the standing filter may give one now.
            if changes.changed:
                db.clear_filtered_files()
            elif env_change is not None:
                db.clear_filtered_files(env_id)
            if env_change is not None and python_changed:
                db.mark_all_pending(
                    env_id, [Reason(ReasonKind.ENVIRONMENT, environment=env_change)]
                )
            if env_change is not None:
                db.save_environment(env.name, env.python, env.packages)
    for change in changes.changed:
        files[change.new.path] = change.new
    for row in changes.restat:
        files[row.path] = row
    baseline_outcome = None
    if write and baseline is not None and env_id >= 0:
        from testmon_watch.core.baseline import BaselineApplied, apply_baseline

        baseline_outcome = apply_baseline(db, baseline, root, env)
        if isinstance(baseline_outcome, BaselineApplied) and baseline_outcome.result:
            files = db.files()  # with the rows of the paths only the baseline knew
            with db.transaction():
                db.clear_filtered_files(env_id)

    path_of = {row.id: path for path, row in files.items()}
    reread = python_changed or baseline is not None
    known = _known_tests(db, env_id, recorded, affected, reread, path_of, ahead)
    plan = SelectionPlan(env_id, env.name, files, known, changes, env_change)
    plan.messages.extend(changes.warnings)
    if baseline_outcome is not None and baseline is not None:
        from testmon_watch.pytest_plugin.baseline_words import describe_baseline

        plan.baseline = baseline_outcome
        plan.baseline_message = describe_baseline(baseline_outcome, baseline, root)
        plan.messages.append(plan.baseline_message)
    return plan


def durations(plan: SelectionPlan) -> Mapping[str, float]:
    return {n: t.duration for n, t in plan.known.items()}
