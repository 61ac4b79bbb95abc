"""Unit tests for testmon_watch.core.selection, on a real database and real file edits."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from testmon_watch.core.changes import detect_changes, file_kind, read_state
from testmon_watch.core.db import Database, FileRow, RecordedTest, RecordedUnit
from testmon_watch.core.keys import ContextKey
from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.reasons import (
    EnvironmentChange,
    FileEvent,
    Interruption,
    PackageChange,
    Reason,
    ReasonKind,
)
from testmon_watch.core.selection import Affected, affected_tests, run_order
from testmon_watch.wording import describe_reason as format_reason
from testmon_watch.wording import describe_unit

CHANGED, IMPORTS = ReasonKind.CHANGED, ReasonKind.IMPORTS

OLD_NS = 1_000_000_000_000_000_000
LATER_NS = OLD_NS + 7_000_000_000

SHOP = textwrap.dedent(
    """\
    LIMIT = 10


    def price(x):
        return x * LIMIT


    def build():
        return {"a": 1}


    class Cart:
        def total(self):
            return price(2)
    """
)


class Project:
    """A project on disk plus its `.testmondata`, written through the real Database API."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db, _ = Database.open(root / ".testmondata")
        with self.db.transaction():
            self.env = self.db.save_environment("default", "py", {})
        self.rows: dict[str, FileRow] = {}

    def write(self, relpath: str, text: str, mtime_ns: int = OLD_NS) -> None:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.utime(path, ns=(mtime_ns, mtime_ns))

    def edit(self, relpath: str, old: str, new: str) -> None:
        text = (self.root / relpath).read_text()
        assert old in text
        self.write(relpath, text.replace(old, new), LATER_NS)

    def delete(self, relpath: str) -> None:
        (self.root / relpath).unlink()

    def file_id(self, relpath: str) -> int:
        row = self.rows.get(relpath)
        if row is None:
            row, _ = read_state(self.root, relpath, file_kind(relpath))
            with self.db.transaction():
                self.db.save_file(row)
            self.rows[relpath] = row
        return row.id

    def fp(self, relpath: str, *blocks: str) -> int:
        file_id = self.file_id(relpath)
        by_name = {b[0]: b[3] for b in self.rows[relpath].blocks}
        with self.db.transaction():
            return self.db.fingerprint_id(file_id, [by_name[name] for name in blocks])

    def unit(self, key: str, fps: Iterable[int] = (), edges: Iterable[str] = ()) -> int:
        edge_ids = {self.file_id(p) for p in edges}
        with self.db.transaction():
            unit = RecordedUnit(ContextKey.parse(key), set(fps), {}, edge_ids)
            return self.db.save_unit(self.env, unit)

    def test(
        self,
        nodeid: str,
        fps: Iterable[int] = (),
        units: Iterable[str] = (),
        roots: Iterable[str] = (),
    ) -> None:
        module = nodeid.split("::", 1)[0]
        root_ids = {self.file_id(p) for p in roots}
        keys = [ContextKey.parse(k) for k in units]
        with self.db.transaction():
            unit_ids = self.db.unit_ids(self.env, keys)
            self.db.save_test(
                self.env,
                RecordedTest(
                    nodeid=nodeid,
                    file_id=self.rows[module].id if module in self.rows else None,
                    outcome=Outcome.PASSED,
                    duration=0.1,
                    fingerprint_ids=set(fps),
                    lines={},
                    roots=root_ids,
                ),
                [unit_ids[k] for k in keys],
            )

    def analyse(self) -> tuple[dict[str, list[Reason]], Affected]:
        files = self.db.files()
        changes = detect_changes(self.root, files)
        fingerprints = self.db.fingerprints_of_files(c.old.id for c in changes.changed)
        tests = self.db.tests(self.env, with_blobs=True)
        result = affected_tests(tests, self.db.units(self.env), changes, fingerprints, files)
        names = {t.id: t.nodeid for t in tests}
        return {names[i]: reasons for i, reasons in result.tests.items()}, result

    def affected(self) -> dict[str, list[Reason]]:
        return self.analyse()[0]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    p = Project(tmp_path)
    yield p
    p.db.close()


# -- function blocks -------------------------------------------------------------


def test_changed_function_block_affects_only_tests_that_ran_it(project: Project) -> None:
    project.write("src/shop.py", SHOP)
    project.test("tests/test_a.py::test_price", [project.fp("src/shop.py", "<module>", "price")])
    project.test(
        "tests/test_a.py::test_total", [project.fp("src/shop.py", "<module>", "Cart.total")]
    )
    project.test(
        "tests/test_a.py::test_both", [project.fp("src/shop.py", "<module>", "Cart.total", "price")]
    )
    project.edit("src/shop.py", "return x * LIMIT", "return x * LIMIT + 1")
    affected = project.affected()
    assert affected == {
        "tests/test_a.py::test_price": [Reason(CHANGED, "src/shop.py", blocks=("price",))],
        "tests/test_a.py::test_both": [Reason(CHANGED, "src/shop.py", blocks=("price",))],
    }
    assert (
        format_reason(affected["tests/test_a.py::test_price"][0]) == "src/shop.py changed in price"
    )


def test_parametrized_tests_sharing_their_records_are_judged_alike(project: Project) -> None:
    # Same fingerprints, units and roots: one judgement, each test its own list.
    project.write("src/shop.py", SHOP)
    price = project.fp("src/shop.py", "<module>", "price")
    build = project.fp("src/shop.py", "<module>", "build")
    for i in range(3):
        project.test(f"t::test_price[{i}]", [price], roots=["src/shop.py"])
        project.test(f"t::test_build[{i}]", [build], roots=["src/shop.py"])
    project.edit("src/shop.py", "return x * LIMIT", "return x * LIMIT + 1")
    affected = project.affected()
    assert sorted(affected) == [f"t::test_price[{i}]" for i in range(3)]
    lists = [affected[f"t::test_price[{i}]"] for i in range(3)]
    assert all(r == [Reason(CHANGED, "src/shop.py", blocks=("price",))] for r in lists)
    lists[0].append(Reason(CHANGED, "elsewhere.py"))
    assert len(lists[1]) == 1


def test_comment_only_edit_affects_nothing(project: Project) -> None:
    project.write("src/shop.py", SHOP)
    project.test(
        "t::a",
        [project.fp("src/shop.py", "<module>", "price", "Cart.total", "build")],
        roots=["src/shop.py"],
    )
    project.edit("src/shop.py", "def price(x):", "# pricing\ndef price(x):  # note")
    assert project.affected() == {}


def test_several_changed_blocks_are_listed_sorted(project: Project) -> None:
    project.write("src/shop.py", SHOP)
    project.test("t::a", [project.fp("src/shop.py", "price", "Cart.total")])
    project.edit("src/shop.py", "return x * LIMIT", "return x")
    project.edit("src/shop.py", "price(2)", "price(3)")
    assert project.affected() == {
        "t::a": [Reason(CHANGED, "src/shop.py", blocks=("Cart.total", "price"))]
    }


def test_module_block_change_affects_fingerprints_with_it(project: Project) -> None:
    project.write("src/shop.py", SHOP)
    project.test("t::module", [project.fp("src/shop.py", "<module>")])
    project.test("t::price_only", [project.fp("src/shop.py", "price")])
    project.edit("src/shop.py", "LIMIT = 10", "LIMIT = 11")
    assert project.affected() == {
        "t::module": [Reason(CHANGED, "src/shop.py", blocks=("<module>",))]
    }


# -- shared units --------------------------------------------------------------


def test_fixture_unit_with_changed_block_affects_every_test_using_it(project: Project) -> None:
    project.write("src/shop.py", SHOP)
    project.write("conftest.py", "import pytest\n")
    key = "fixture:session::conftest.py::cart"
    project.unit(key, [project.fp("src/shop.py", "Cart.total")])
    project.unit(
        "fixture:module:tests/test_b.py:tests/test_b.py::other",
        [project.fp("src/shop.py", "price")],
    )
    project.test("tests/test_a.py::one", units=[key])
    project.test("tests/test_a.py::two", [project.fp("conftest.py", "<module>")], units=[key])
    project.test(
        "tests/test_b.py::three", units=["fixture:module:tests/test_b.py:tests/test_b.py::other"]
    )
    project.edit("src/shop.py", "price(2)", "price(4)")
    affected = project.affected()
    expected = Reason(CHANGED, "src/shop.py", blocks=("Cart.total",), via=ContextKey.parse(key))
    assert affected == {"tests/test_a.py::one": [expected], "tests/test_a.py::two": [expected]}
    assert format_reason(expected) == (
        "src/shop.py changed in Cart.total (through the session-scoped fixture cart)"
    )


def test_direct_and_unit_reasons_are_both_kept_and_deduplicated(project: Project) -> None:
    project.write("src/shop.py", SHOP)
    fp = project.fp("src/shop.py", "price")
    project.unit("fixture:session::conftest.py::db", [fp])
    project.test("t::a", [fp], units=["fixture:session::conftest.py::db"])
    project.edit("src/shop.py", "return x * LIMIT", "return 0")
    [reasons] = project.affected().values()
    assert reasons == [
        Reason(CHANGED, "src/shop.py", blocks=("price",)),
        Reason(
            CHANGED,
            "src/shop.py",
            blocks=("price",),
            via=ContextKey.parse("fixture:session::conftest.py::db"),
        ),
    ]


# -- import closure ---------------------------------------------------------------


def import_project(project: Project) -> None:
    """a imports b imports c; d is unrelated. Each module body recorded in its import unit."""
    project.write("a.py", "import b\n\ndef fa():\n    return b.fb()\n")
    project.write("b.py", "import c\nB = c.C\n\ndef fb():\n    return B\n")
    project.write("c.py", "C = 1\n\ndef helper():\n    return 2\n\nTABLE = helper()\n")
    project.write("d.py", "D = 1\n")
    project.write("tests/test_x.py", "import a\n\ndef test_x():\n    assert a.fa()\n")
    project.write("tests/test_y.py", "import d\n\ndef test_y():\n    assert d.D\n")
    project.unit("import:a.py", [project.fp("a.py", "<module>")], edges=["b.py"])
    project.unit("import:b.py", [project.fp("b.py", "<module>")], edges=["c.py"])
    project.unit("import:c.py", [project.fp("c.py", "<module>", "helper")])
    project.unit("import:d.py", [project.fp("d.py", "<module>")])
    project.test(
        "tests/test_x.py::test_x",
        [project.fp("tests/test_x.py", "test_x"), project.fp("a.py", "fa")],
        roots=["tests/test_x.py", "a.py"],
    )
    project.test(
        "tests/test_y.py::test_y",
        [project.fp("tests/test_y.py", "test_y")],
        roots=["tests/test_y.py"],
    )
    project.test("tests/test_b.py::test_b", [project.fp("b.py", "fb")], roots=["b.py"])


def test_import_of_changed_module_block_affects_importers(project: Project) -> None:
    import_project(project)
    project.edit("b.py", "B = c.C", "B = c.C + 1")
    affected, result = project.analyse()
    reason = Reason(IMPORTS, "b.py", blocks=("<module>",))
    assert affected == {"tests/test_x.py::test_x": [reason], "tests/test_b.py::test_b": [reason]}
    assert (
        format_reason(reason) == "its code imports b.py, whose import-time code changed (<module>)"
    )
    ids = {path: row.id for path, row in project.db.files().items()}
    assert result.import_affected_files == {ids["a.py"], ids["b.py"]}


def test_import_closure_is_transitive(project: Project) -> None:
    import_project(project)
    project.edit("c.py", "C = 1", "C = 2")
    affected = project.affected()
    assert set(affected) == {"tests/test_x.py::test_x", "tests/test_b.py::test_b"}
    assert affected["tests/test_x.py::test_x"] == [Reason(IMPORTS, "c.py", blocks=("<module>",))]


def test_function_called_at_import_time_counts_as_import_time_code(project: Project) -> None:
    import_project(project)
    project.edit("c.py", "return 2", "return 3")  # helper() runs while c is imported
    affected = project.affected()
    assert set(affected) == {"tests/test_x.py::test_x", "tests/test_b.py::test_b"}
    assert affected["tests/test_x.py::test_x"] == [Reason(IMPORTS, "c.py", blocks=("helper",))]


def test_function_body_change_in_imported_module_is_not_import_time(project: Project) -> None:
    import_project(project)
    project.edit("b.py", "return B", "return B * 2")
    # only the test that ran fb is affected, not every importer of b
    assert project.affected() == {
        "tests/test_b.py::test_b": [Reason(CHANGED, "b.py", blocks=("fb",))],
    }


def test_import_cycles_terminate(project: Project) -> None:
    project.write("p.py", "import q\n")
    project.write("q.py", "import p\nQ = 1\n")
    project.write("r.py", "R = 1\n")
    project.unit("import:p.py", [project.fp("p.py", "<module>")], edges=["q.py"])
    project.unit("import:q.py", [project.fp("q.py", "<module>")], edges=["p.py"])
    project.test("t::p", roots=["p.py"])
    project.test("t::r", roots=["r.py"])
    project.edit("q.py", "Q = 1", "Q = 2")
    assert set(project.affected()) == {"t::p"}


# -- other kinds of change ---------------------------------------------------------


def test_data_file_change(project: Project) -> None:
    project.write("data/prices.json", '{"a": 1}')
    project.write("data/other.json", '{"b": 1}')
    project.test("t::reads", [project.fp("data/prices.json", "<content>")])
    project.test("t::reads_other", [project.fp("data/other.json", "<content>")])
    project.edit("data/prices.json", "1", "2")
    assert project.affected() == {
        "t::reads": [Reason(CHANGED, "data/prices.json")],
    }


def test_deleted_file_affects_every_fingerprint_and_importer(project: Project) -> None:
    import_project(project)
    project.test("t::c_helper", [project.fp("c.py", "helper")])
    project.delete("c.py")
    affected = project.affected()
    assert affected["t::c_helper"] == [Reason(CHANGED, "c.py", FileEvent.DELETED)]
    assert set(affected) == {"t::c_helper", "tests/test_x.py::test_x", "tests/test_b.py::test_b"}
    assert affected["tests/test_x.py::test_x"] == [Reason(IMPORTS, "c.py", FileEvent.DELETED)]


def test_syntax_error_affects_all_fingerprints_of_the_file(project: Project) -> None:
    project.write("src/shop.py", SHOP)
    project.write("src/other.py", "X = 1\n")
    project.test("t::price", [project.fp("src/shop.py", "price")])
    project.test("t::build", [project.fp("src/shop.py", "build")])
    project.test("t::other", [project.fp("src/other.py", "<module>")])
    project.edit("src/shop.py", "return x * LIMIT", "return x *")
    affected = project.affected()
    assert set(affected) == {"t::price", "t::build"}
    [reason] = affected["t::build"]
    assert reason.kind is CHANGED and reason.file == "src/shop.py"
    assert reason.event is FileEvent.UNPARSABLE
    assert reason.error.startswith("syntax error at src/shop.py:5")
    assert format_reason(reason).startswith("src/shop.py: syntax error at src/shop.py:5")


def test_restat_only_affects_nothing(project: Project) -> None:
    project.write("src/shop.py", SHOP)
    project.test("t::a", [project.fp("src/shop.py", "<module>", "price")], roots=["src/shop.py"])
    project.write("src/shop.py", SHOP, LATER_NS)
    assert project.affected() == {}


# -- format_reason and describe_unit ------------------------------------------------


FIXTURE_DB = ContextKey.parse("fixture:session::conftest.py::db")


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (Reason(CHANGED, "a.py", blocks=("f", "g")), "a.py changed in f, g"),
        (Reason(CHANGED, "a.py"), "a.py changed"),
        (Reason(CHANGED, "a.py", blocks=("<module>",)), "a.py changed in its top level"),
        (
            Reason(CHANGED, "a.py", blocks=("a", "b", "c", "d", "e")),
            "a.py changed in a, b, c, d ...",
        ),
        (
            Reason(CHANGED, "a.py", blocks=("f",), via=ContextKey.import_of("b.py")),
            "a.py changed in f (through the import of b.py)",
        ),
        (Reason(CHANGED, "a.py", FileEvent.DELETED), "a.py: deleted"),
        (Reason(CHANGED, "a.py", FileEvent.CREATED), "a.py: created"),
        (
            Reason(CHANGED, "a.py", FileEvent.CHANGED_DURING_RUN),
            "a.py: changed during the run",
        ),
        (
            Reason(CHANGED, "a.py", FileEvent.UNPARSABLE, error="syntax error at a.py:3: x"),
            "a.py: syntax error at a.py:3: x",
        ),
        (
            Reason(IMPORTS, "b.py", blocks=("<module>",)),
            "its code imports b.py, whose import-time code changed (<module>)",
        ),
        (
            Reason(IMPORTS, "b.py"),
            "its code imports b.py, whose import-time code changed",
        ),
        (Reason.failed(), "it failed last time"),
        (Reason.failed(Outcome.ERROR), "it had an error last time"),
        (Reason.new(), "it is new"),
        (
            Reason(
                ReasonKind.ENVIRONMENT,
                environment=EnvironmentChange(packages=(PackageChange("numpy", "1.0", "2.0"),)),
            ),
            "the environment changed: numpy 1.0 -> 2.0",
        ),
        (Reason.interrupted(), "its last run did not finish"),
        (
            Reason.interrupted(Interruption.CHILD_LOST),
            "a child process it started did not report",
        ),
        (Reason(ReasonKind.FULL_RUN), "full run requested"),
        (Reason(ReasonKind.REQUESTED), "requested"),
    ],
)
def test_format_reason(reason: Reason, text: str) -> None:
    assert format_reason(reason) == text
    assert Reason.from_json(reason.to_json()) == reason  # the stored form keeps every field


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        (
            {"kind": "changed", "file": "a.py", "blocks": "f, g ..."},
            Reason(CHANGED, "a.py", blocks=("f", "g")),
        ),
        (
            {"kind": "changed", "file": "a.py", "blocks": "f", "via": "session-scoped fixture db"},
            Reason(CHANGED, "a.py", blocks=("f",)),
        ),
        (
            {"kind": "changed", "file": "a.py", "detail": "deleted"},
            Reason(CHANGED, "a.py", FileEvent.DELETED),
        ),
        (
            {"kind": "changed", "file": "a.py", "detail": "syntax error at a.py:1: x"},
            Reason(CHANGED, "a.py", FileEvent.UNPARSABLE, error="syntax error at a.py:1: x"),
        ),
        (
            {"kind": "imports", "file": "c.py", "detail": "<module>"},
            Reason(IMPORTS, "c.py", blocks=("<module>",)),
        ),
        ({"kind": "failed", "detail": "had an error"}, Reason.failed(Outcome.ERROR)),
        ({"kind": "interrupted"}, Reason.interrupted()),
        (
            {"kind": "interrupted", "detail": "a child process it started did not report"},
            Reason.interrupted(Interruption.CHILD_LOST),
        ),
        ({"kind": "environment", "detail": "numpy 1 -> 2"}, Reason(ReasonKind.ENVIRONMENT)),
    ],
)
def test_reasons_stored_by_earlier_versions_are_read(
    stored: dict[str, str], reason: Reason
) -> None:
    assert Reason.from_json(stored) == reason


@pytest.mark.parametrize("bad", [None, [], {}, {"kind": 3}, {"kind": "bogus"}])
def test_a_malformed_reason_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r"not a reason|is not a valid ReasonKind"):
        Reason.from_json(bad)


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("fixture:session::conftest.py::db", "session-scoped fixture db"),
        (
            "fixture:module:tests/test_a.py:tests/test_a.py::conn[pg]",
            "module-scoped fixture conn[pg]",
        ),
        ("import:src/a.py", "import of src/a.py"),
        ("collect:tests/test_a.py", "collection of tests/test_a.py"),
        ("session", "session"),
    ],
)
def test_describe_unit(key: str, text: str) -> None:
    parsed = ContextKey.parse(key)
    assert str(parsed) == key
    assert describe_unit(parsed) == text


# -- run_order ------------------------------------------------------------------------


def test_run_order_failures_first_then_duration_module_order_kept() -> None:
    nodeids = [
        "tests/test_slow.py::a",
        "tests/test_slow.py::b",
        "tests/test_fast.py::z",
        "tests/test_fast.py::y",
        "tests/test_fail.py::second",
        "tests/test_fail.py::first",
        "tests/test_mid.py::m",
    ]
    durations = {
        "tests/test_slow.py::a": 5.0,
        "tests/test_slow.py::b": 5.0,
        "tests/test_fast.py::z": 0.1,
        "tests/test_fast.py::y": 0.1,
        "tests/test_fail.py::second": 9.0,
        "tests/test_fail.py::first": 9.0,
        "tests/test_mid.py::m": 1.0,
    }
    order = run_order(nodeids, durations, failed={"tests/test_fail.py::first"})
    assert order == [
        "tests/test_fail.py::second",
        "tests/test_fail.py::first",
        "tests/test_fast.py::z",
        "tests/test_fast.py::y",
        "tests/test_mid.py::m",
        "tests/test_slow.py::a",
        "tests/test_slow.py::b",
    ]


def test_run_order_unknown_durations_count_as_zero_and_ties_keep_input_order() -> None:
    nodeids = ["b.py::x", "a.py::x", "c.py::x"]
    assert run_order(nodeids, {"b.py::x": 1.0}, set()) == ["a.py::x", "c.py::x", "b.py::x"]
    assert run_order(nodeids, {}, set()) == nodeids
    assert run_order([], {}, set()) == []


def test_run_order_several_failing_modules_by_duration() -> None:
    nodeids = ["a.py::1", "b.py::1", "c.py::1"]
    durations = {"a.py::1": 3.0, "b.py::1": 1.0, "c.py::1": 0.0}
    assert run_order(nodeids, durations, {"a.py::1", "b.py::1"}) == [
        "b.py::1",
        "a.py::1",
        "c.py::1",
    ]


def test_run_order_keeps_parametrized_and_class_tests_together() -> None:
    nodeids = ["t.py::C::a[1]", "u.py::x", "t.py::C::a[2]", "t.py::b"]
    order = run_order(nodeids, {"u.py::x": 9.0}, set())
    assert order == ["t.py::C::a[1]", "t.py::C::a[2]", "t.py::b", "u.py::x"]
