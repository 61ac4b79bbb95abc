"""plan_selection on a real data file: the known tests it returns are what the file holds.

After marking the affected tests, the plan reuses the rows it read to find
them instead of reading them again (a large suite saves one full read per
save); these tests hold it to what a fresh read gives.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from testmon_watch.core.changes import read_state
from testmon_watch.core.db import Database, RecordedTest
from testmon_watch.core.environment import Environment
from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.reasons import Reason, ReasonKind
from testmon_watch.pytest_plugin.selecting import ReadAhead, _reasons_for, plan_selection

OLD_NS = 1_000_000_000_000_000_000
LATER_NS = OLD_NS + 7_000_000_000

SHOP = textwrap.dedent(
    """\
    def price(x):
        return x * 10


    def build():
        return {"a": 1}
    """
)

ENV = Environment("default", "CPython 3.x", {})


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database, _ = Database.open(tmp_path / ".testmondata")
    yield database
    database.close()


def write(root: Path, relpath: str, text: str, mtime_ns: int) -> None:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def record(db: Database, root: Path) -> dict[str, int]:
    """Two environments' tests of shop.py; returns the environment ids."""
    write(root, "shop.py", SHOP, OLD_NS)
    row, _ = read_state(root, "shop.py", "python")
    with db.transaction():
        file_id = db.save_file(row)
        checksum = {name: c for name, _, _, c in row.blocks}
        price = db.fingerprint_id(file_id, [checksum["<module>"], checksum["price"]])
        build = db.fingerprint_id(file_id, [checksum["<module>"], checksum["build"]])
        envs = {
            name: db.save_environment(name, ENV.python, dict(ENV.packages))
            for name in ("default", "other")
        }
        for env_id in envs.values():
            for nodeid, fp, outcome, pending in [
                ("t::test_price[1]", price, Outcome.PASSED, None),
                ("t::test_price[2]", price, Outcome.PASSED, [Reason.interrupted()]),
                ("t::test_build", build, Outcome.PASSED, [Reason.interrupted()]),
                ("t::test_build_fails", build, Outcome.FAILED, None),
            ]:
                test = RecordedTest(nodeid, None, outcome, 0.1, {fp}, {}, set(), pending)
                db.save_test(env_id, test, [])
    return envs


def known_reasons(db: Database, root: Path, env: Environment) -> dict[str, list[Reason] | None]:
    plan = plan_selection(db, root, env, write=True)
    return {nodeid: test.reasons for nodeid, test in plan.known.items()}


def stored_reasons(db: Database, env_id: int) -> dict[str, list[Reason] | None]:
    return {test.nodeid: _reasons_for(test) for test in db.tests(env_id)}


def test_after_an_edit_the_plan_holds_the_marks_just_written(db: Database, tmp_path: Path) -> None:
    envs = record(db, tmp_path)
    write(tmp_path, "shop.py", SHOP.replace("x * 10", "x * 11"), LATER_NS)
    known = known_reasons(db, tmp_path, ENV)
    assert known == stored_reasons(db, envs["default"])
    changed = Reason(ReasonKind.CHANGED, "shop.py", blocks=("price",))
    assert known["t::test_price[1]"] == [changed]
    assert known["t::test_price[2]"] == [changed]  # the new mark replaces the old one
    assert known["t::test_build"] == [Reason.interrupted()]  # unaffected: still pending
    assert known["t::test_build_fails"] == [Reason.failed(Outcome.FAILED)]
    # The other environment's tests are marked too, and only this one's are known.
    assert stored_reasons(db, envs["other"]) == known


def test_without_changes_and_after_another_interpreter_the_plan_reads_the_file(
    db: Database, tmp_path: Path
) -> None:
    envs = record(db, tmp_path)
    known = known_reasons(db, tmp_path, ENV)
    assert known == stored_reasons(db, envs["default"])
    assert known["t::test_price[1]"] is None
    # Another Python marks every test of the environment: read back, not reused.
    write(tmp_path, "shop.py", SHOP.replace("x * 10", "x * 12"), LATER_NS)
    other_python = Environment("default", "CPython 9.9", {})
    known = known_reasons(db, tmp_path, other_python)
    assert known == stored_reasons(db, envs["default"])
    assert {r[0].kind for r in known.values() if r} == {ReasonKind.ENVIRONMENT}


# -- rows read ahead (a standby reads them while it waits) ------------------------------


def test_rows_read_ahead_give_the_plan_a_fresh_read_gives(db: Database, tmp_path: Path) -> None:
    envs = record(db, tmp_path)
    ahead = ReadAhead.read(db)
    write(tmp_path, "shop.py", SHOP.replace("x * 10", "x * 11"), LATER_NS)
    plan = plan_selection(db, tmp_path, ENV, write=True, ahead=ahead)
    known = {nodeid: test.reasons for nodeid, test in plan.known.items()}
    assert known == stored_reasons(db, envs["default"])
    changed = Reason(ReasonKind.CHANGED, "shop.py", blocks=("price",))
    assert known["t::test_price[1]"] == [changed]
    assert known["t::test_build"] == [Reason.interrupted()]


def test_rows_read_ahead_are_dropped_once_another_process_wrote(
    db: Database, tmp_path: Path
) -> None:
    envs = record(db, tmp_path)
    ahead = ReadAhead.read(db)
    assert ahead.take(db) is ahead
    # Another process (its own connection) records the edit meanwhile: a
    # `pytest --testmon` in another terminal, or the previous run's end.
    write(tmp_path, "shop.py", SHOP.replace("x * 10", "x * 11"), LATER_NS)
    other, _ = Database.open(tmp_path / ".testmondata")
    try:
        plan_selection(other, tmp_path, ENV, write=True)
    finally:
        other.close()
    assert ahead.take(db) is None
    # The file's state now holds the edit: nothing changed since, as a fresh read says.
    plan = plan_selection(db, tmp_path, ENV, write=True, ahead=ahead)
    assert plan.changes.changed == []
    known = {nodeid: test.reasons for nodeid, test in plan.known.items()}
    assert known == stored_reasons(db, envs["default"])
    changed = Reason(ReasonKind.CHANGED, "shop.py", blocks=("price",))
    assert known["t::test_price[2]"] == [changed]  # marked by the other process


def test_rows_read_ahead_are_dropped_once_this_connection_wrote(
    db: Database, tmp_path: Path
) -> None:
    record(db, tmp_path)
    ahead = ReadAhead.read(db)
    with db.transaction():
        db.save_environment("third", ENV.python, {})
    assert ahead.take(db) is None


# -- files to skip and to collect in part, from the rows read ahead ----------------------


def record_test_files(db: Database, root: Path) -> None:
    """Tests in three test files, each depending on one function of shop.py."""
    write(root, "shop.py", SHOP, OLD_NS)
    modules = {
        "tests/test_a.py": "class TestPrice:\n    pass\n\ndef test_build():\n    pass\n",
        "tests/test_b.py": "def test_build():\n    pass\n",
        "tests/test_c.py": "def test_price():\n    pass\n",
    }
    with db.transaction():
        row, _ = read_state(root, "shop.py", "python")
        shop_id = db.save_file(row)
        checksum = {name: c for name, _, _, c in row.blocks}
        fingerprint = {
            name: db.fingerprint_id(shop_id, [checksum["<module>"], checksum[name]])
            for name in ("price", "build")
        }
        env_id = db.save_environment("default", ENV.python, dict(ENV.packages))
        for relpath, text in modules.items():
            write(root, relpath, text, OLD_NS)
            module_row, _ = read_state(root, relpath, "python")
            file_id = db.save_file(module_row)
            for nodeid, uses in [
                (f"{relpath}::TestPrice::test_one[1]", "price"),
                (f"{relpath}::TestPrice::test_one[2]", "price"),
                (f"{relpath}::test_build", "build"),
                (f"{relpath}::test_price", "price"),
            ]:
                if nodeid.partition("::")[2].partition(":")[0] not in text:
                    continue
                fp = fingerprint[uses]
                test = RecordedTest(nodeid, file_id, Outcome.PASSED, 0.1, {fp}, {}, set())
                db.save_test(env_id, test, [])


@pytest.mark.parametrize(
    ("edit", "skipped", "narrowed"),
    [
        # price(): test_a.py runs only TestPrice, test_b.py nothing, test_c.py all.
        (
            ("x * 10", "x * 11"),
            {"tests/test_b.py"},
            {"tests/test_a.py": {("TestPrice",), ("TestPrice", "test_one")}},
        ),
        # build(): test_a.py runs only test_build, test_c.py nothing, test_b.py all.
        (('"a": 1', '"a": 2'), {"tests/test_c.py"}, {"tests/test_a.py": {("test_build",)}}),
    ],
)
def test_read_ahead_the_plan_skips_and_narrows_the_files_a_fresh_read_does(
    db: Database,
    tmp_path: Path,
    edit: tuple[str, str],
    skipped: set[str],
    narrowed: dict[str, set[tuple[str, ...]]],
) -> None:
    record_test_files(db, tmp_path)
    ahead = ReadAhead.read(db)
    write(tmp_path, "shop.py", SHOP.replace(*edit), LATER_NS)
    from_ahead = plan_selection(db, tmp_path, ENV, write=True, ahead=ahead)
    assert from_ahead.test_files_to_skip() == skipped
    assert from_ahead.parts_to_collect() == {p: frozenset(n) for p, n in narrowed.items()}
    # A fresh read (another connection, the marks just written) plans the same.
    write(tmp_path, "shop.py", SHOP.replace(*edit), LATER_NS)
    fresh_db, _ = Database.open(tmp_path / ".testmondata")
    try:
        fresh = plan_selection(fresh_db, tmp_path, ENV, write=False)
    finally:
        fresh_db.close()
    assert dict(from_ahead.known.items()) == dict(fresh.known.items())
    assert fresh.test_files_to_skip() == skipped
    assert fresh.parts_to_collect() == from_ahead.parts_to_collect()
