"""Unit tests for testmon_watch.core.merge: copying records between two real data files."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from pathlib import Path

import pytest

from testmon_watch.core import distributions
from testmon_watch.core.changes import file_kind, parse_state, read_state
from testmon_watch.core.db import Database, FileRow, RecordedTest
from testmon_watch.core.merge import Conflict, import_tests
from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.packing import unpack_ints
from testmon_watch.core.reasons import (
    EnvironmentChange,
    FileEvent,
    PackageChange,
    Reason,
    ReasonKind,
)

SHOP = """\
LIMIT = 10


def price(x):
    return x * LIMIT


def discount(x):
    return x - 1
"""
ENV = "default"


class DataFile:
    """One data file, written through the real Database API, as a recording run would."""

    def __init__(
        self,
        path: Path,
        root: Path,
        packages: dict[str, str] | None = None,
        python: str = "py",
    ) -> None:
        self.root = root
        self.db, _ = Database.open(path)
        with self.db.transaction():
            self.env = self.db.save_environment(ENV, python, packages or {})
        self.rows: dict[str, FileRow] = {}

    def state(self, relpath: str, text: str | None = None) -> FileRow:
        """The file's row: from `text` as its content, else as it is on disk now."""
        row = self.rows.get(relpath)
        if row is None:
            if text is None:
                row, _ = read_state(self.root, relpath, file_kind(relpath))
            else:
                row = parse_state(self.root, relpath, "python", text.encode(), 1, len(text))
            with self.db.transaction():
                self.db.save_file(row)
            self.rows[relpath] = row
        return row

    def fp(self, relpath: str, *blocks: str) -> int:
        row = self.state(relpath)
        by_name = {b[0]: b[3] for b in row.blocks}
        with self.db.transaction():
            return self.db.fingerprint_id(row.id, [by_name[name] for name in blocks])

    def test(
        self, nodeid: str, fps: list[int], at: float, outcome: Outcome = Outcome.PASSED
    ) -> None:
        with self.db.transaction():
            self.db.save_test(
                self.env,
                RecordedTest(nodeid, None, outcome, 0.1, set(fps), {}, set()),
                [],
                recorded_at=at,
            )

    def pending(self) -> dict[str, list[Reason] | None]:
        return {t.nodeid: t.pending for t in self.db.tests(self.env)}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "shop.py").write_text(SHOP)
    return tmp_path


@pytest.fixture
def source(root: Path) -> Iterator[DataFile]:
    data = DataFile(root / "source.testmondata", root)
    yield data
    data.db.close()


@pytest.fixture
def destination(root: Path) -> Iterator[DataFile]:
    data = DataFile(root / "local.testmondata", root)
    yield data
    data.db.close()


def run_import(source: DataFile, destination: DataFile) -> list[Conflict]:
    with destination.db.transaction():
        result = import_tests(
            source.db,
            destination.db,
            ENV,
            lambda row: read_state(source.root, row.path, row.kind)[0],
        )
    return result.conflicts


def test_a_record_of_the_same_content_is_imported_up_to_date(
    source: DataFile, destination: DataFile
) -> None:
    source.test("t::price", [source.fp("shop.py", "<module>", "price")], at=10.0)
    run_import(source, destination)
    assert destination.pending() == {"t::price": None}
    # Its fingerprint now names the destination's row of the file, with the same checksums.
    (test,) = destination.db.tests(destination.env, with_blobs=True)
    (fp_id,) = unpack_ints(test.fingerprints)
    row = destination.db.files()["shop.py"]
    fps = destination.db.fingerprints_of_files([row.id])
    by_name = {b[0]: b[3] for b in row.blocks}
    assert fps[fp_id] == (row.id, {by_name["<module>"], by_name["price"]})


def test_a_record_of_other_content_is_pending_as_a_local_change_would_be(
    root: Path, source: DataFile, destination: DataFile
) -> None:
    # Recorded elsewhere against an older shop.py: price's body differed.
    source.state("shop.py", SHOP.replace("return x * LIMIT", "return LIMIT * x"))
    source.test("t::price", [source.fp("shop.py", "<module>", "price")], at=10.0)
    source.test("t::discount", [source.fp("shop.py", "<module>", "discount")], at=10.0)
    run_import(source, destination)
    assert destination.pending() == {
        "t::price": [Reason(ReasonKind.CHANGED, "shop.py", blocks=("price",))],
        "t::discount": None,
    }


def test_a_file_gone_here_makes_its_tests_pending(
    root: Path, source: DataFile, destination: DataFile
) -> None:
    source.test("t::price", [source.fp("shop.py", "price")], at=10.0)
    (root / "shop.py").unlink()
    run_import(source, destination)
    assert destination.pending() == {
        "t::price": [Reason(ReasonKind.CHANGED, "shop.py", FileEvent.DELETED)]
    }
    assert destination.db.files()["shop.py"].missing


def test_same_content_cut_into_other_blocks_is_not_trusted(
    source: DataFile, destination: DataFile
) -> None:
    # Another version of the tool may cut the same bytes differently.
    row = source.state("shop.py")
    with source.db.transaction():
        row.blocks[:] = [
            (name, start, end, checksum + 1) for name, start, end, checksum in row.blocks
        ]
        source.db.save_file(row)
    source.test("t::price", [source.fp("shop.py", "price")], at=10.0)
    run_import(source, destination)
    assert destination.pending()["t::price"] == [
        Reason(ReasonKind.CHANGED, "shop.py", blocks=("price",))
    ]


def test_the_destinations_own_file_rows_are_kept(
    root: Path, source: DataFile, destination: DataFile
) -> None:
    own = destination.state("shop.py")
    source.state("shop.py", SHOP.replace("x - 1", "x - 2"))
    source.test("t::discount", [source.fp("shop.py", "discount")], at=10.0)
    run_import(source, destination)
    assert destination.db.files()["shop.py"].digest == own.digest
    assert destination.pending()["t::discount"] == [
        Reason(ReasonKind.CHANGED, "shop.py", blocks=("discount",))
    ]


def test_the_newer_record_wins_and_both_are_reported(
    source: DataFile, destination: DataFile
) -> None:
    fp = source.fp("shop.py", "price")
    source.test("t::newer_there", [fp], at=20.0)
    source.test("t::newer_here", [fp], at=10.0, outcome=Outcome.FAILED)
    source.test("t::same", [fp], at=15.0, outcome=Outcome.FAILED)
    here = destination.fp("shop.py", "price")
    destination.test("t::newer_there", [here], at=10.0, outcome=Outcome.FAILED)
    destination.test("t::newer_here", [here], at=20.0)
    destination.test("t::same", [here], at=15.0)
    conflicts = run_import(source, destination)
    assert {c.nodeid: c.source_won for c in conflicts} == {
        "t::newer_there": True,
        "t::newer_here": False,
        "t::same": False,
    }
    outcomes = {t.nodeid: t.outcome for t in destination.db.tests(destination.env)}
    assert outcomes == {
        "t::newer_there": Outcome.PASSED,
        "t::newer_here": Outcome.PASSED,
        "t::same": Outcome.PASSED,
    }
    assert destination.db.test_times(destination.env)["t::newer_there"] == 20.0


def test_importing_twice_copies_nothing_more(source: DataFile, destination: DataFile) -> None:
    source.test("t::price", [source.fp("shop.py", "price")], at=10.0)
    run_import(source, destination)
    with destination.db.transaction():
        again = import_tests(source.db, destination.db, ENV, lambda row: row)
    assert again.imported == []
    assert [c.source_won for c in again.conflicts] == [False]


def test_shared_units_are_united(source: DataFile, destination: DataFile) -> None:
    there, here = source.fp("shop.py", "price"), destination.fp("shop.py", "discount")
    with source.db.transaction():
        unit = source.db.save_unit_by_key(source.env, "session", [there], {}, [])
        source.db.save_test(
            source.env, RecordedTest("t::a", None, Outcome.PASSED, 0.1, set(), {}, set()), [unit]
        )
    with destination.db.transaction():
        destination.db.save_unit_by_key(destination.env, "session", [here], {}, [])
    run_import(source, destination)
    united = destination.db.unit_by_key(destination.env, "session")
    assert united is not None
    checksums = {
        name: checksum for name, _, _, checksum in destination.db.files()["shop.py"].blocks
    }
    fps = destination.db.fingerprints_of_files([destination.rows["shop.py"].id])
    assert {frozenset(fps[i][1]) for i in unpack_ints(united.fingerprints)} == {
        frozenset({checksums["price"]}),
        frozenset({checksums["discount"]}),
    }
    (test,) = destination.db.tests(destination.env, with_blobs=True)
    assert list(unpack_ints(test.units)) == [united.id]


def test_a_dangling_reference_in_the_source_is_not_trusted(
    source: DataFile, destination: DataFile
) -> None:
    source.test("t::a", [source.fp("shop.py", "price"), 999], at=10.0)
    run_import(source, destination)
    assert destination.pending() == {"t::a": [Reason.interrupted()]}


def test_records_made_under_another_python_are_pending(root: Path, destination: DataFile) -> None:
    other = DataFile(root / "ci.testmondata", root, python="CPython 0.1")
    try:
        other.test("t::a", [other.fp("shop.py", "price")], at=10.0)
        run_import(other, destination)
    finally:
        other.db.close()
    change = EnvironmentChange(python=("CPython 0.1", "py"))
    assert destination.pending() == {"t::a": [Reason(ReasonKind.ENVIRONMENT, environment=change)]}


def installed_row(data: DataFile, name: str, version: str) -> int:
    """A fingerprint on the pseudo-row of distribution `name` as recorded at `version`."""
    path = distributions.dist_path(ENV, name)
    checksum = distributions.checksum(f"{name}=={version}")
    row = FileRow(path, distributions.DIST_KIND, 0, 0, version, [("<dist>", 0, 0, checksum)], [])
    with data.db.transaction():
        data.db.save_file(row)
        return data.db.fingerprint_id(row.id, [checksum])


def test_records_made_under_other_packages_run_only_where_a_package_they_used_differs(
    root: Path, destination: DataFile
) -> None:
    other = DataFile(root / "ci.testmondata", root, packages={"rich": "13.0", "extra": "1"})
    pytest_version = importlib.metadata.version("pytest")
    try:
        price = other.fp("shop.py", "price")
        other.test("t::same", [price, installed_row(other, "pytest", pytest_version)], at=10.0)
        other.test("t::gone", [price, installed_row(other, "not-installed-here", "1.0")], at=10.0)
        run_import(other, destination)
    finally:
        other.db.close()
    change = EnvironmentChange.of_packages([PackageChange("not-installed-here", "1.0", None)])
    assert destination.pending() == {
        "t::same": None,
        "t::gone": [Reason(ReasonKind.ENVIRONMENT, environment=change)],
    }
