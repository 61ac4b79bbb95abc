"""Changes + recorded dependencies -> which tests are affected, and why."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from testmon_watch.core import distributions
from testmon_watch.core.changes import ChangeSet, FileChange
from testmon_watch.core.db import FileRow, TestRow, UnitRow
from testmon_watch.core.keys import ContextKey, ContextKind
from testmon_watch.core.packing import unpack_ints
from testmon_watch.core.reasons import (
    EnvironmentChange,
    FileEvent,
    PackageChange,
    Reason,
    ReasonKind,
)


@dataclass
class Affected:
    """The result of change analysis: test id -> reasons."""

    tests: dict[int, list[Reason]]
    import_affected_files: set[int]


def affected_tests(
    tests: Iterable[TestRow],
    units: Mapping[int, UnitRow],
    changes: ChangeSet,
    fingerprints: Mapping[int, tuple[int, set[int]]],
    files_by_path: Mapping[str, FileRow],
    packages: EnvironmentChange | None = None,
) -> Affected:
    """Tests whose recorded execution touched a changed block, directly or via imports.

    `fingerprints` must hold every fingerprint of the changed files.
    `packages`: how the installed distributions changed, named in the reason of
    a test that depends on their whole set.
    """
    changed_by_id = {c.old.id: c for c in changes.changed}
    removed = {c.old.id: c.removed_blocks() for c in changes.changed}

    # 1. Fingerprints that mention a checksum which no longer exists.
    fp_reasons: dict[int, Reason] = {}
    for fp_id, (file_id, checksums) in fingerprints.items():
        change = changed_by_id.get(file_id)
        if change is None:
            continue
        gone = removed[file_id]
        hit = sorted({gone[c] for c in checksums if c in gone})
        if change.old.kind in distributions.KINDS:
            fp_reasons[fp_id] = _installed_reason(change, packages)
        elif change.new.missing:
            fp_reasons[fp_id] = Reason(ReasonKind.CHANGED, change.old.path, FileEvent.DELETED)
        elif change.old.missing:
            # Recorded while absent (a test looked for it): its appearance matters.
            fp_reasons[fp_id] = Reason(ReasonKind.CHANGED, change.old.path, FileEvent.CREATED)
        elif change.new.error:
            fp_reasons[fp_id] = Reason(
                ReasonKind.CHANGED, change.old.path, FileEvent.UNPARSABLE, error=change.new.error
            )
        elif hit:
            names = tuple(n for n in hit if not n.startswith("<") or n == "<module>")
            fp_reasons[fp_id] = Reason(ReasonKind.CHANGED, change.old.path, blocks=names)

    # 2. Shared units that contain an affected fingerprint.
    keys = {unit_id: ContextKey.parse(unit.key) for unit_id, unit in units.items()}
    unit_reasons: dict[int, Reason] = {}
    for unit_id, unit in units.items():
        for fp_id in unpack_ints(unit.fingerprints):
            if fp_id in fp_reasons:
                unit_reasons[unit_id] = fp_reasons[fp_id].through(keys[unit_id])
                break

    # 3. Modules whose import-time behaviour may differ, then everything importing them.
    file_id_of = {path: row.id for path, row in files_by_path.items()}
    import_reason: dict[int, Reason] = {}
    for unit_id, reason in unit_reasons.items():
        key = keys[unit_id]
        if key.kind is ContextKind.IMPORT:
            module_file = file_id_of.get(key.target)
            if module_file is None:
                continue
            if reason.kind is ReasonKind.ENVIRONMENT:  # an installed package it imports
                import_reason[module_file] = reason
            else:
                import_reason[module_file] = Reason(
                    ReasonKind.IMPORTS, reason.file, reason.event, reason.blocks, reason.error
                )
    for change in changes.changed:
        if change.module_block_changed or change.new.missing or change.new.error:
            import_reason.setdefault(
                change.old.id, Reason(ReasonKind.IMPORTS, change.old.path, blocks=("<module>",))
            )
    importers: dict[int, list[int]] = {}
    for unit_id, unit in units.items():
        key = keys[unit_id]
        if key.kind is ContextKind.IMPORT:
            source = file_id_of.get(key.target)
            if source is not None:
                for target in unpack_ints(unit.edges):
                    importers.setdefault(target, []).append(source)
    queue = deque(import_reason)
    while queue:
        target = queue.popleft()
        for source in importers.get(target, ()):
            if source not in import_reason:
                import_reason[source] = import_reason[target]
                queue.append(source)

    # 4. Tests. Parametrized suites repeat the same three blobs in thousands of
    # tests (opt-einsum: 7,891 tests, a few hundred distinct): each distinct
    # triple is decoded and judged once.
    result: dict[int, list[Reason]] = {}
    if not (fp_reasons or unit_reasons or import_reason):
        return Affected(result, set())
    judged: dict[tuple[bytes, bytes, bytes], list[Reason]] = {}
    for test in tests:
        blobs = (test.fingerprints, test.units, test.roots)
        reasons = judged.get(blobs)
        if reasons is None:
            reasons = judged[blobs] = _test_reasons(blobs, fp_reasons, unit_reasons, import_reason)
        if reasons:
            result[test.id] = list(reasons)
    return Affected(result, set(import_reason))


def _test_reasons(
    blobs: tuple[bytes, bytes, bytes],
    fp_reasons: Mapping[int, Reason],
    unit_reasons: Mapping[int, Reason],
    import_reason: Mapping[int, Reason],
) -> list[Reason]:
    """Why a test with these (fingerprints, units, roots) blobs is affected; [] if it is not."""
    fingerprints, units, roots = blobs
    # Most tests are not affected: `isdisjoint` answers that in C, without a Python loop.
    # A kind of reason with no entry (a body edit has no import reason) unpacks nothing.
    reasons: list[Reason] = []
    if fp_reasons:
        ids = unpack_ints(fingerprints)
        if not fp_reasons.keys().isdisjoint(ids):
            reasons = [fp_reasons[i] for i in ids if i in fp_reasons]
    if unit_reasons:
        ids = unpack_ints(units)
        if not unit_reasons.keys().isdisjoint(ids):
            reasons += [unit_reasons[i] for i in ids if i in unit_reasons]
    if not reasons and import_reason:
        ids = unpack_ints(roots)
        if not import_reason.keys().isdisjoint(ids):
            return [next(import_reason[i] for i in ids if i in import_reason)]
    return _dedupe(reasons)


def _installed_reason(change: FileChange, packages: EnvironmentChange | None) -> Reason:
    """An installed distribution's row changed: which one, from which version to which."""
    parsed = distributions.parse_path(change.old.path)
    if parsed is not None and parsed[0] == distributions.DIST_KIND:
        before, after = change.old.digest or None, change.new.digest or None
        environment = EnvironmentChange.of_packages([PackageChange(parsed[2], before, after)])
    else:  # the set of distributions, or pytest's own: the whole difference says it
        environment = packages or EnvironmentChange()
    return Reason(ReasonKind.ENVIRONMENT, environment=environment)


def _dedupe(reasons: list[Reason]) -> list[Reason]:
    return list(dict.fromkeys(reasons))  # reasons are frozen dataclasses: equal ones collapse


def run_order(nodeids: list[str], durations: Mapping[str, float], failed: set[str]) -> list[str]:
    """Failures first, then fastest first; tests of one module stay together and in order.

    Keeping a module's tests together keeps module- and class-scoped fixtures set
    up once; reordering within a module could break tests that rely on order.
    """
    modules: dict[str, list[str]] = {}
    for nodeid in nodeids:
        modules.setdefault(nodeid.split("::", 1)[0], []).append(nodeid)

    def key(module: str) -> tuple[int, float]:
        members = modules[module]
        has_failure = any(n in failed for n in members)
        return (0 if has_failure else 1, sum(durations.get(n, 0.0) for n in members))

    ordered: list[str] = []
    for module in sorted(modules, key=key):
        ordered.extend(modules[module])
    return ordered
