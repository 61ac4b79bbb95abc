"""Unit tests for testmon_watch.core.store.RunStore: real files, real database."""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from testmon_watch.core.changes import detect_changes, file_kind, read_state
from testmon_watch.core.db import Database, FileRow
from testmon_watch.core.keys import ContextKey
from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.packing import unpack_ints, unpack_lines
from testmon_watch.core.reasons import FileEvent, Interruption, Reason, ReasonKind
from testmon_watch.core.records import Execution, TestRecord
from testmon_watch.core.selection import affected_tests
from testmon_watch.core.store import MTIME_SLACK_NS, UNKNOWN_BLOCK, BlockIndex, RunStore


def after_writes() -> int:
    """A run start time later than every file the test wrote so far."""
    return time.time_ns() + MTIME_SLACK_NS + 1


OLD_NS = 1_000_000_000_000_000_000
LATER_NS = OLD_NS + 7_000_000_000

SHOP = textwrap.dedent(
    """\
    LIMIT = 10


    def price(x):
        return x * LIMIT


    class Cart:
        def total(self):
            return price(2)
    """
)
# line 1: LIMIT, 4: def price, 5: price body, 8: class Cart, 9: def total, 10: total body


def write(root: Path, relpath: str, text: str, mtime_ns: int = OLD_NS) -> None:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


class Setup:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.db, _ = Database.open(root / ".testmondata")
        with self.db.transaction():
            self.env = self.db.save_environment("default", "py", {})

    def known(self, *relpaths: str) -> dict[str, FileRow]:
        """Save the files' current state, as selection does before the run starts."""
        with self.db.transaction():
            for relpath in relpaths:
                kind = "dir" if (self.root / relpath).is_dir() else file_kind(relpath)
                row, _ = read_state(self.root, relpath, kind)
                self.db.save_file(row)
        return self.db.files()

    def store(self, *relpaths: str) -> RunStore:
        # The run "began" after the fixture files were written, as in a real session.
        return RunStore(
            self.db, self.env, self.root, self.known(*relpaths), started_ns=after_writes()
        )

    def checksums(self, relpath: str, *names: str) -> set[int]:
        by_name = {b[0]: b[3] for b in self.db.files()[relpath].blocks}
        return {by_name[n] for n in names}

    def fingerprint_sets(self, fp_ids: Any) -> dict[str, set[int]]:
        """path -> checksums of each fingerprint (one per file)."""
        ids = set(unpack_ints(fp_ids)) if isinstance(fp_ids, bytes) else set(fp_ids)
        files = {row.id: path for path, row in self.db.files().items()}
        all_fps = self.db.fingerprints_of_files(files)
        return {
            files[file_id]: checksums for fp, (file_id, checksums) in all_fps.items() if fp in ids
        }

    def test_rows(self) -> dict[str, Any]:
        return {t.nodeid: t for t in self.db.tests(self.env, with_blobs=True)}

    def file_id(self, relpath: str) -> int:
        return self.db.files()[relpath].id


def execution(
    lines: dict[str, list[int]] | None = None,
    reads: Sequence[str] = (),
    listings: Sequence[str] = (),
    key: str = "session",
    imported: Sequence[str] = (),
    incomplete_children: int = 0,
) -> Execution:
    return Execution(
        ContextKey.parse(key),
        {path: set(numbers) for path, numbers in (lines or {}).items()},
        set(reads),
        set(listings),
        set(imported),
        incomplete_children,
    )


def record_for(
    nodeid: str,
    lines: dict[str, list[int]] | None = None,
    units: Sequence[str] = (),
    roots: Sequence[str] | None = None,
    complete: bool = True,
    incomplete_children: int = 0,
) -> TestRecord:
    path = nodeid.split("::")[0]
    return TestRecord(
        nodeid=nodeid,
        path=path,
        outcome=Outcome.PASSED,
        duration=0.25,
        units=[ContextKey.parse(key) for key in units],
        roots=list(roots) if roots is not None else [path],
        execution=execution(lines, key=f"test:{nodeid}", incomplete_children=incomplete_children),
        complete=complete,
    )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = Setup(tmp_path)
    yield s
    s.db.close()


# -- BlockIndex ----------------------------------------------------------------


def test_block_index() -> None:
    index = BlockIndex([("<module>", 1, 20, 100), ("f", 3, 5, 1), ("g", 8, 12, 2)])
    assert index.checksums(frozenset([1, 2, 6, 7, 13, 20])) == {100}
    assert index.checksums(frozenset([3, 5])) == {1}
    assert index.checksums(frozenset([8, 12, 4])) == {1, 2}
    assert index.checksums(frozenset([8, 12, 4])) == {1, 2}  # remembered: the same answer
    assert BlockIndex([]).checksums(frozenset([1, 5])) == {UNKNOWN_BLOCK}
    assert BlockIndex([("<content>", 0, 0, 77)]).checksums(frozenset([1])) == {77}


def test_block_index_forgets_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BlockIndex, "MEMO_SIZE", 2)
    index = BlockIndex([("<module>", 1, 20, 100), ("f", 3, 5, 1)])
    answers = [index.checksums(frozenset([line])) for line in (1, 3, 4, 1, 3)]
    assert answers == [{100}, {1}, {1}, {100}, {1}]
    assert len(index._memo) <= 2


# -- resolve -------------------------------------------------------------------------


def test_resolve_maps_lines_to_blocks(setup: Setup) -> None:
    write(setup.root, "src/shop.py", SHOP)
    store = setup.store("src/shop.py")
    with setup.db.transaction():
        body = store.resolve(execution({"src/shop.py": [5]}))
        module = store.resolve(execution({"src/shop.py": [1, 4, 8, 9]}))
        method = store.resolve(execution({"src/shop.py": [10, 5]}))
    assert setup.fingerprint_sets(body.fingerprint_ids) == {
        "src/shop.py": setup.checksums("src/shop.py", "price")
    }
    assert setup.fingerprint_sets(module.fingerprint_ids) == {
        "src/shop.py": setup.checksums("src/shop.py", "<module>")
    }
    assert setup.fingerprint_sets(method.fingerprint_ids) == {
        "src/shop.py": setup.checksums("src/shop.py", "price", "Cart.total"),
    }
    file_id = setup.file_id("src/shop.py")
    assert body.lines == {file_id: {5}} and body.files == {file_id}
    assert body.changed_during_run == []


def test_resolve_same_blocks_share_a_fingerprint(setup: Setup) -> None:
    write(setup.root, "src/shop.py", SHOP)
    store = setup.store("src/shop.py")
    with setup.db.transaction():
        first = store.resolve(execution({"src/shop.py": [5]}))
        second = store.resolve(execution({"src/shop.py": [5]}))
    assert first.fingerprint_ids == second.fingerprint_ids


def test_resolve_reads_listings_and_unknown_files(setup: Setup) -> None:
    write(setup.root, "src/shop.py", SHOP)
    write(setup.root, "data/prices.json", '{"a": 1}')
    write(setup.root, "templates/page.py", "X = 1\n")
    (setup.root / "plugins").mkdir()
    store = setup.store("src/shop.py")  # the others are first seen during the run
    with setup.db.transaction():
        deps = store.resolve(
            execution(
                {"src/shop.py": [5]},
                reads=["data/prices.json", "templates/page.py"],
                listings=["plugins"],
            )
        )
    files = setup.db.files()
    assert files["data/prices.json"].kind == "data"
    assert files["templates/page.py"].kind == "python"
    assert files["plugins"].kind == "dir"
    sets = setup.fingerprint_sets(deps.fingerprint_ids)
    assert sets["data/prices.json"] == setup.checksums("data/prices.json", "<content>")
    assert sets["templates/page.py"] == setup.checksums("templates/page.py", "<module>")
    assert sets["plugins"] == setup.checksums("plugins", "<listing>")
    # only executed files count as executed (roots), reads do not
    assert deps.files == {files["src/shop.py"].id}


def test_resolve_file_with_syntax_error_uses_unknown_block(setup: Setup) -> None:
    write(setup.root, "bad.py", "def f(:\n")
    store = setup.store("bad.py")
    with setup.db.transaction():
        deps = store.resolve(execution({"bad.py": [1]}))
    assert setup.fingerprint_sets(deps.fingerprint_ids) == {"bad.py": {UNKNOWN_BLOCK}}


# -- save_tests ------------------------------------------------------------------------


def test_save_tests_writes_dependencies(setup: Setup) -> None:
    write(setup.root, "src/shop.py", SHOP)
    write(
        setup.root,
        "tests/test_shop.py",
        "from src.shop import price\n\ndef test_p():\n    assert price(1)\n",
    )
    write(setup.root, "conftest.py", "X = 1\n")
    store = setup.store("src/shop.py", "tests/test_shop.py", "conftest.py")
    with setup.db.transaction():
        store.save_tests(
            [
                record_for(
                    "tests/test_shop.py::test_p",
                    {"tests/test_shop.py": [4], "src/shop.py": [5]},
                    roots=["tests/test_shop.py", "conftest.py"],
                    units=["session"],
                )
            ]
        )
    row = setup.test_rows()["tests/test_shop.py::test_p"]
    assert row.outcome == "passed" and row.duration == 0.25 and row.pending is None
    assert row.file_id == setup.file_id("tests/test_shop.py")
    assert setup.fingerprint_sets(row.fingerprints) == {
        "src/shop.py": setup.checksums("src/shop.py", "price"),
        "tests/test_shop.py": setup.checksums("tests/test_shop.py", "test_p"),
    }
    assert set(unpack_ints(row.roots)) == {
        setup.file_id(p) for p in ("src/shop.py", "tests/test_shop.py", "conftest.py")
    }
    # the session unit is referenced before it is written: a placeholder keeps the reference
    units = setup.db.units(setup.env)
    assert [u.key for u in units.values()] == ["session"]
    assert list(unpack_ints(row.units)) == list(units)
    [(_, lines, _)] = list(setup.db.test_lines(setup.env))
    assert unpack_lines(lines) == {
        setup.file_id("tests/test_shop.py"): {4},
        setup.file_id("src/shop.py"): {5},
    }


def test_files_a_fixture_ran_in_become_roots(setup: Setup) -> None:
    write(setup.root, "src/shop.py", SHOP)
    write(
        setup.root, "conftest.py", "import pytest\n\n@pytest.fixture\ndef cart():\n    return 1\n"
    )
    write(setup.root, "tests/test_a.py", "def test_a(cart):\n    assert cart\n")
    store = setup.store("src/shop.py", "conftest.py", "tests/test_a.py")
    key = "fixture:session::conftest.py::cart"
    with setup.db.transaction():
        store.save_units(
            [execution({"conftest.py": [5], "src/shop.py": [10]}, key=key, imported=[])]
        )
        store.save_tests(
            [record_for("tests/test_a.py::test_a", {"tests/test_a.py": [2]}, units=[key])]
        )
    row = setup.test_rows()["tests/test_a.py::test_a"]
    assert set(unpack_ints(row.roots)) == {
        setup.file_id(p) for p in ("conftest.py", "src/shop.py", "tests/test_a.py")
    }
    # a later store (next flush or next run) finds the unit's files through the database
    later = RunStore(setup.db, setup.env, setup.root, setup.db.files(), started_ns=after_writes())
    with setup.db.transaction():
        later.save_tests([record_for("tests/test_a.py::test_b", units=[key])])
    row_b = setup.test_rows()["tests/test_a.py::test_b"]
    assert {setup.file_id("conftest.py"), setup.file_id("src/shop.py")} <= set(
        unpack_ints(row_b.roots)
    )


def test_file_changed_during_the_run_leaves_tests_pending(setup: Setup) -> None:
    write(setup.root, "src/shop.py", SHOP)
    write(setup.root, "src/other.py", "Y = 1\n")
    store = setup.store("src/shop.py", "src/other.py")
    # the file is edited while the tests run, after the store loaded its state
    write(setup.root, "src/shop.py", SHOP.replace("x * LIMIT", "x * LIMIT * 2"), LATER_NS)
    with setup.db.transaction():
        store.save_tests(
            [
                record_for("tests/test_a.py::one", {"src/shop.py": [5]}),
                record_for("tests/test_a.py::two", {"src/shop.py": [1]}),
                record_for("tests/test_a.py::three", {"src/other.py": [1]}),
            ]
        )
    rows = setup.test_rows()
    reason = [Reason(ReasonKind.CHANGED, "src/shop.py", FileEvent.CHANGED_DURING_RUN)]
    assert rows["tests/test_a.py::one"].pending == reason
    assert rows["tests/test_a.py::two"].pending == reason  # second lookup of the same file
    assert rows["tests/test_a.py::three"].pending is None
    # the stored state is still the one from the start of the run: the edit is detected next time
    assert setup.db.files()["src/shop.py"].mtime_ns == OLD_NS


def test_incomplete_test_is_pending_interrupted(setup: Setup) -> None:
    write(setup.root, "tests/test_a.py", "def test_a():\n    pass\n")
    store = setup.store("tests/test_a.py")
    with setup.db.transaction():
        store.save_tests([record_for("tests/test_a.py::test_a", complete=False)])
    assert setup.test_rows()["tests/test_a.py::test_a"].pending == [Reason.interrupted()]


def test_rerecording_clears_pending(setup: Setup) -> None:
    write(setup.root, "tests/test_a.py", "def test_a():\n    pass\n")
    store = setup.store("tests/test_a.py")
    with setup.db.transaction():
        store.save_tests([record_for("tests/test_a.py::test_a", complete=False)])
        store.save_tests([record_for("tests/test_a.py::test_a")])
    assert setup.test_rows()["tests/test_a.py::test_a"].pending is None


# -- save_units --------------------------------------------------------------------------


def test_save_units_import_edges_static_and_dynamic(setup: Setup) -> None:
    write(setup.root, "pkg/__init__.py", "")
    write(
        setup.root,
        "pkg/a.py",
        "import os\nfrom pkg import b\nimport pkg.missing\n\ndef f():\n    return b\n",
    )
    write(setup.root, "pkg/b.py", "B = 1\n")
    write(setup.root, "plugins/c.py", "C = 1\n")
    store = setup.store("pkg/__init__.py", "pkg/a.py", "pkg/b.py")
    store.modules.update({"pkg": "pkg/__init__.py", "pkg.a": "pkg/a.py", "pkg.b": "pkg/b.py"})
    with setup.db.transaction():
        store.save_units(
            [
                # plugins/c.py was imported dynamically while pkg/a.py's body ran
                execution(
                    {"pkg/a.py": [1, 2, 3, 5]}, key="import:pkg/a.py", imported=["plugins/c.py"]
                ),
                execution({"pkg/b.py": [1]}, key="import:pkg/b.py", imported=[]),
                execution(
                    {"pkg/b.py": [1]}, key="fixture:session::conftest.py::x", imported=["pkg/a.py"]
                ),
            ]
        )
    units = {u.key: u for u in setup.db.units(setup.env, with_lines=True).values()}
    ids = {path: row.id for path, row in setup.db.files().items()}
    # static: pkg (parent package) and pkg.b through store.modules;
    # os and pkg.missing are not project files
    assert set(unpack_ints(units["import:pkg/a.py"].edges)) == {
        ids["pkg/__init__.py"],
        ids["pkg/b.py"],
        ids["plugins/c.py"],
    }
    assert list(unpack_ints(units["import:pkg/b.py"].edges)) == []
    # other units keep the modules they imported (or loaded by name) as edges:
    # those become roots of every test that uses the unit
    assert list(unpack_ints(units["fixture:session::conftest.py::x"].edges)) == [ids["pkg/a.py"]]
    assert setup.fingerprint_sets(units["import:pkg/a.py"].fingerprints) == {
        "pkg/a.py": setup.checksums("pkg/a.py", "<module>"),
    }
    assert unpack_lines(units["import:pkg/a.py"].lines) == {ids["pkg/a.py"]: {1, 2, 3, 5}}


def test_save_units_upserts_by_key(setup: Setup) -> None:
    write(setup.root, "src/shop.py", SHOP)
    store = setup.store("src/shop.py")
    with setup.db.transaction():
        store.save_tests([record_for("t.py::a", units=["session"])])
        store.save_units([execution({"src/shop.py": [5]}, key="session", imported=[])])
    units = list(setup.db.units(setup.env).values())
    assert len(units) == 1
    fingerprints = setup.fingerprint_sets(units[0].fingerprints)
    # The session unit, which every test uses, also holds what every test depends
    # on of the installed distributions (pytest, its plugins: core/distributions.py).
    assert fingerprints.pop("<global>/default")
    assert fingerprints == {"src/shop.py": setup.checksums("src/shop.py", "price")}
    assert list(unpack_ints(setup.test_rows()["t.py::a"].units)) == [units[0].id]


# -- recorded by the store, selected by selection --------------------------------------------


def test_store_then_selection_round_trip(setup: Setup) -> None:
    write(setup.root, "config.py", "LIMIT = 10\n")
    write(
        setup.root, "shop.py", "from config import LIMIT\n\ndef price(x):\n    return x * LIMIT\n"
    )
    write(
        setup.root,
        "tests/test_shop.py",
        "from shop import price\n\ndef test_p():\n    assert price(1)\n",
    )
    write(setup.root, "tests/test_other.py", "def test_o():\n    assert True\n")
    store = setup.store("config.py", "shop.py", "tests/test_shop.py", "tests/test_other.py")
    store.modules.update({"config": "config.py", "shop": "shop.py"})
    with setup.db.transaction():
        store.save_units(
            [
                execution({"config.py": [1]}, key="import:config.py", imported=[]),
                execution({"shop.py": [1, 3]}, key="import:shop.py", imported=["config.py"]),
                execution(
                    {"tests/test_shop.py": [1, 3]},
                    key="import:tests/test_shop.py",
                    imported=["shop.py"],
                ),
            ]
        )
        store.save_tests(
            [
                record_for(
                    "tests/test_shop.py::test_p", {"tests/test_shop.py": [4], "shop.py": [4]}
                ),
                record_for("tests/test_other.py::test_o", {"tests/test_other.py": [2]}),
            ]
        )
    write(setup.root, "config.py", "LIMIT = 11\n", LATER_NS)

    files = setup.db.files()
    changes = detect_changes(setup.root, files)
    tests = setup.db.tests(setup.env, with_blobs=True)
    result = affected_tests(
        tests,
        setup.db.units(setup.env),
        changes,
        setup.db.fingerprints_of_files(c.old.id for c in changes.changed),
        files,
    )
    names = {t.id: t.nodeid for t in tests}
    assert {names[i]: r for i, r in result.tests.items()} == {
        "tests/test_shop.py::test_p": [
            Reason(ReasonKind.IMPORTS, "config.py", blocks=("<module>",))
        ],
    }


# -- merge_late --------------------------------------------------------------------------------


def test_late_child_data_is_added_to_its_test_and_unit(setup: Setup) -> None:
    write(setup.root, "src/shop.py", SHOP)
    write(setup.root, "tests/test_a.py", "def test_a():\n    pass\n")
    store = setup.store("src/shop.py", "tests/test_a.py")
    fixture = "fixture:session::conftest.py::pool"
    with setup.db.transaction():
        store.save_units([execution({"src/shop.py": [1]}, key=fixture)])
        store.save_tests([record_for("tests/test_a.py::test_a", {"tests/test_a.py": [2]})])
        store.merge_late(
            [
                # a child of the test reported after the test was saved
                execution({"src/shop.py": [5]}, key="test:tests/test_a.py::test_a"),
                # a child of the fixture never reported: its users must run again
                execution({"src/shop.py": [10]}, key=fixture, incomplete_children=1),
                # a context nothing was saved for is left alone
                execution({"src/shop.py": [5]}, key="test:tests/test_a.py::gone"),
            ]
        )
    row = setup.test_rows()["tests/test_a.py::test_a"]
    assert setup.fingerprint_sets(row.fingerprints) == {
        "src/shop.py": setup.checksums("src/shop.py", "price"),
        "tests/test_a.py": setup.checksums("tests/test_a.py", "test_a"),
    }
    assert row.pending is None  # no test uses the fixture unit
    [unit] = [u for u in setup.db.units(setup.env, with_lines=True).values() if u.key == fixture]
    assert unpack_lines(unit.lines) == {setup.file_id("src/shop.py"): {1, 10}}
    assert "tests/test_a.py::gone" not in setup.test_rows()


def test_late_incomplete_child_of_a_test_leaves_it_pending(setup: Setup) -> None:
    write(setup.root, "tests/test_a.py", "def test_a():\n    pass\n")
    store = setup.store("tests/test_a.py")
    with setup.db.transaction():
        store.save_tests([record_for("tests/test_a.py::test_a")])
        store.merge_late([execution(key="test:tests/test_a.py::test_a", incomplete_children=1)])
    assert setup.test_rows()["tests/test_a.py::test_a"].pending == [
        Reason.interrupted(Interruption.CHILD_LOST)
    ]


def test_incomplete_children_of_a_test_leave_it_pending(setup: Setup) -> None:
    write(setup.root, "tests/test_a.py", "def test_a():\n    pass\n")
    store = setup.store("tests/test_a.py")
    with setup.db.transaction():
        store.save_tests([record_for("tests/test_a.py::test_a", incomplete_children=2)])
    assert setup.test_rows()["tests/test_a.py::test_a"].pending == [
        Reason.interrupted(Interruption.CHILD_LOST)
    ]
