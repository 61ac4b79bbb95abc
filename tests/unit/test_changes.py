"""Unit tests for testmon_watch.core.changes: real files on disk."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from testmon_watch.core import blocks as blocks_mod
from testmon_watch.core import changes as changes_mod
from testmon_watch.core.changes import (
    ChangeSet,
    FileChange,
    detect_changes,
    file_kind,
    module_name_for,
    parse_state,
    prepare,
    read_state,
)
from testmon_watch.core.db import FileRow
from testmon_watch.core.reasons import ChangedFile
from testmon_watch.wording import describe_changes

OLD_NS = 1_000_000_000_000_000_000
LATER_NS = OLD_NS + 7_000_000_000

SOURCE = textwrap.dedent(
    """\
    import os

    LIMIT = 10


    def price(x):
        return x * LIMIT


    class Cart:
        def total(self):
            return price(2)
    """
)


def write(root: Path, relpath: str, text: str | bytes, mtime_ns: int = OLD_NS) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def state(root: Path, relpath: str, kind: str | None = None) -> FileRow:
    row, changed = read_state(root, relpath, kind or file_kind(relpath))
    assert changed
    return row


def names(row: FileRow) -> list[str]:
    return [b[0] for b in row.blocks]


# -- helpers -------------------------------------------------------------------


def test_file_kind() -> None:
    assert file_kind("src/a.py") == "python"
    assert file_kind("data/a.json") == "data"
    assert file_kind("a.pyc") == "data"


def test_module_name_for(tmp_path: Path) -> None:
    write(tmp_path, "pkg/__init__.py", "")
    write(tmp_path, "pkg/sub/__init__.py", "")
    write(tmp_path, "pkg/sub/mod.py", "")
    write(tmp_path, "top.py", "")
    assert module_name_for(tmp_path / "pkg/sub/mod.py") == ("pkg.sub.mod", False)
    assert module_name_for(tmp_path / "pkg/sub/__init__.py") == ("pkg.sub", True)
    assert module_name_for(tmp_path / "top.py") == ("top", False)


def test_parse_state_python_and_relative_imports(tmp_path: Path) -> None:
    write(tmp_path, "pkg/__init__.py", "")
    content = b"from . import sibling\nfrom .other import thing\n"
    row = parse_state(tmp_path, "pkg/mod.py", "python", content, OLD_NS, len(content))
    assert "pkg.sibling" in row.imports and "pkg.other" in row.imports
    assert names(row) == ["<module>"] and row.error is None and row.digest


def test_parse_state_data(tmp_path: Path) -> None:
    row = parse_state(tmp_path, "x.json", "data", b"{}", OLD_NS, 2)
    assert [b[0] for b in row.blocks] == ["<content>"]
    assert row.imports == [] and row.kind == "data"
    other = parse_state(tmp_path, "x.json", "data", b"[]", OLD_NS, 2)
    assert row.blocks[0][3] != other.blocks[0][3]


# -- read_state ----------------------------------------------------------------


def test_read_state_new_python_file(tmp_path: Path) -> None:
    write(tmp_path, "src/a.py", SOURCE)
    row = state(tmp_path, "src/a.py")
    assert row.path == "src/a.py" and row.kind == "python"
    assert row.mtime_ns == OLD_NS and row.size == len(SOURCE)
    assert names(row) == ["<module>", "price", "Cart.total"]
    assert "os" in row.imports
    assert not row.missing and row.error is None


def test_read_state_same_stat_is_trusted_without_reading(tmp_path: Path) -> None:
    path = write(tmp_path, "a.py", SOURCE)
    previous = state(tmp_path, "a.py")
    # Same size, different content, mtime restored: the stat contract says
    # "unchanged", and the file is not read at all (the object is reused).
    edited = SOURCE.replace("x * LIMIT", "x + LIMIT")
    assert len(edited) == len(SOURCE)
    write(tmp_path, "a.py", edited, OLD_NS)
    assert path.stat().st_size == previous.size
    current, changed = read_state(tmp_path, "a.py", "python", previous)
    assert current is previous
    assert changed is False


def test_read_state_touch_without_content_change_is_a_restat(tmp_path: Path) -> None:
    write(tmp_path, "a.py", SOURCE)
    previous = state(tmp_path, "a.py")
    previous.id = 42
    write(tmp_path, "a.py", SOURCE, LATER_NS)
    current, changed = read_state(tmp_path, "a.py", "python", previous)
    assert changed is False
    assert current is not previous
    assert current.mtime_ns == LATER_NS and current.id == 42
    assert current.blocks == previous.blocks and current.digest == previous.digest


def test_read_state_racy_stored_mtime_zero_hashes_content(tmp_path: Path) -> None:
    write(tmp_path, "a.py", SOURCE)
    previous = state(tmp_path, "a.py")
    previous.mtime_ns = 0  # what the database stores for a file modified "just now"
    current, changed = read_state(tmp_path, "a.py", "python", previous)
    assert changed is False and current.mtime_ns == OLD_NS


def test_comment_only_edit_changes_content_but_no_blocks(tmp_path: Path) -> None:
    write(tmp_path, "a.py", SOURCE)
    previous = state(tmp_path, "a.py")
    edited = SOURCE.replace("def price(x):\n", "# a comment\ndef price(x):  # why\n\n")
    write(tmp_path, "a.py", edited, LATER_NS)
    current, changed = read_state(tmp_path, "a.py", "python", previous)
    assert changed is True
    change = FileChange(previous, current)
    assert change.removed_blocks() == {}
    assert change.module_block_changed is False
    # the block moved down, with the same checksum
    assert {b[3] for b in current.blocks} == {b[3] for b in previous.blocks}
    assert [b[1] for b in current.blocks] != [b[1] for b in previous.blocks]


def test_body_edit_names_the_function(tmp_path: Path) -> None:
    write(tmp_path, "a.py", SOURCE)
    previous = state(tmp_path, "a.py")
    write(tmp_path, "a.py", SOURCE.replace("x * LIMIT", "x * LIMIT + 1"), LATER_NS)
    current, changed = read_state(tmp_path, "a.py", "python", previous)
    assert changed
    change = FileChange(previous, current)
    price = next(b[3] for b in previous.blocks if b[0] == "price")
    assert change.removed_blocks() == {price: "price"}
    assert change.module_block_changed is False


def test_method_edit_names_the_qualified_method(tmp_path: Path) -> None:
    write(tmp_path, "a.py", SOURCE)
    previous = state(tmp_path, "a.py")
    write(tmp_path, "a.py", SOURCE.replace("price(2)", "price(3)"), LATER_NS)
    current, _ = read_state(tmp_path, "a.py", "python", previous)
    assert list(FileChange(previous, current).removed_blocks().values()) == ["Cart.total"]


def test_module_level_edit_changes_module_block(tmp_path: Path) -> None:
    write(tmp_path, "a.py", SOURCE)
    previous = state(tmp_path, "a.py")
    write(tmp_path, "a.py", SOURCE.replace("LIMIT = 10", "LIMIT = 11"), LATER_NS)
    current, _ = read_state(tmp_path, "a.py", "python", previous)
    change = FileChange(previous, current)
    assert change.module_block_changed is True
    assert list(change.removed_blocks().values()) == ["<module>"]


def test_syntax_error(tmp_path: Path) -> None:
    write(tmp_path, "src/a.py", SOURCE)
    previous = state(tmp_path, "src/a.py")
    broken = SOURCE.replace("return x * LIMIT", "return x *")
    write(tmp_path, "src/a.py", broken, LATER_NS)
    current, changed = read_state(tmp_path, "src/a.py", "python", previous)
    assert changed
    assert current.error is not None
    assert "syntax error at src/a.py:7" in current.error
    assert current.blocks == [] and not current.missing
    change = FileChange(previous, current)
    assert set(change.removed_blocks().values()) == {"<module>", "price", "Cart.total"}
    assert change.module_block_changed is True
    assert ChangeSet([change]).warnings == [current.error]


def test_deleted_file_is_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "a.py", SOURCE)
    previous = state(tmp_path, "a.py")
    path.unlink()
    current, changed = read_state(tmp_path, "a.py", "python", previous)
    assert changed and current.missing
    assert current.mtime_ns == -1 and current.blocks == [] and current.digest == ""
    # still missing next time: no change, same object
    again, changed_again = read_state(tmp_path, "a.py", "python", current)
    assert changed_again is False and again is current


def test_file_under_a_path_that_became_a_file_is_missing(tmp_path: Path) -> None:
    write(tmp_path, "pkg/a.py", SOURCE)
    previous = state(tmp_path, "pkg/a.py")
    (tmp_path / "pkg/a.py").unlink()
    (tmp_path / "pkg").rmdir()
    (tmp_path / "pkg").write_text("now a file")
    current, changed = read_state(tmp_path, "pkg/a.py", "python", previous)
    assert changed and current.missing


def test_never_existing_file_is_missing(tmp_path: Path) -> None:
    current, changed = read_state(tmp_path, "nope.json", "data")
    assert changed and current.missing and current.kind == "data"


def test_reappearing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "a.py", SOURCE)
    before = state(tmp_path, "a.py")
    path.unlink()
    gone, _ = read_state(tmp_path, "a.py", "python", before)
    write(tmp_path, "a.py", SOURCE, LATER_NS)
    back, changed = read_state(tmp_path, "a.py", "python", gone)
    assert changed and not back.missing
    assert back.blocks == before.blocks
    change = FileChange(gone, back)
    assert change.removed_blocks() == {}


def test_reappearing_empty_data_file(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.txt", b"")
    gone, _ = read_state(tmp_path, "empty.txt", "data")
    assert not gone.missing  # an empty file exists
    path.unlink()
    gone, changed = read_state(tmp_path, "empty.txt", "data", gone)
    assert changed and gone.missing
    write(tmp_path, "empty.txt", b"")
    back, changed = read_state(tmp_path, "empty.txt", "data", gone)
    assert changed and not back.missing


def test_data_file_change(tmp_path: Path) -> None:
    write(tmp_path, "data/x.json", '{"a": 1}')
    previous = state(tmp_path, "data/x.json")
    write(tmp_path, "data/x.json", '{"a": 2}', LATER_NS)
    current, changed = read_state(tmp_path, "data/x.json", "data", previous)
    assert changed
    change = FileChange(previous, current)
    assert list(change.removed_blocks().values()) == ["<content>"]
    assert change.module_block_changed is False


def test_dir_listing(tmp_path: Path) -> None:
    directory = tmp_path / "plugins"
    directory.mkdir()
    write(tmp_path, "plugins/a.py", "")
    os.utime(directory, ns=(OLD_NS, OLD_NS))
    previous = state(tmp_path, "plugins", "dir")
    assert previous.kind == "dir" and [b[0] for b in previous.blocks] == ["<listing>"]

    # same mtime: trusted
    current, changed = read_state(tmp_path, "plugins", "dir", previous)
    assert current is previous and not changed

    # content of an entry changes, listing does not: mtime differs, not changed
    write(tmp_path, "plugins/a.py", "x = 1\n")
    os.utime(directory, ns=(LATER_NS, LATER_NS))
    current, changed = read_state(tmp_path, "plugins", "dir", previous)
    assert not changed and current is not previous and current.digest == previous.digest

    # a new entry: changed
    write(tmp_path, "plugins/b.py", "")
    os.utime(directory, ns=(LATER_NS + 1, LATER_NS + 1))
    current, changed = read_state(tmp_path, "plugins", "dir", previous)
    assert changed and current.digest != previous.digest
    assert list(FileChange(previous, current).removed_blocks().values()) == ["<listing>"]


def test_root_dir_listing(tmp_path: Path) -> None:
    write(tmp_path, "a.txt", "")
    row, changed = read_state(tmp_path, "", "dir")
    assert changed and not row.missing


def test_deleted_dir_is_missing(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    previous = state(tmp_path, "d", "dir")
    (tmp_path / "d").rmdir()
    current, changed = read_state(tmp_path, "d", "dir", previous)
    assert changed and current.missing


# -- detect_changes ------------------------------------------------------------


def stored(root: Path, relpaths: list[tuple[str, str]]) -> dict[str, FileRow]:
    rows = {}
    for i, (relpath, kind) in enumerate(relpaths, start=1):
        row = state(root, relpath, kind)
        row.id = i
        rows[relpath] = row
    return rows


def test_detect_changes_on_a_mix(tmp_path: Path) -> None:
    write(tmp_path, "same.py", SOURCE)
    write(tmp_path, "touched.py", SOURCE)
    write(tmp_path, "edited.py", SOURCE)
    write(tmp_path, "comment.py", SOURCE)
    write(tmp_path, "deleted.py", SOURCE)
    write(tmp_path, "data.json", "{}")
    rows = stored(
        tmp_path,
        [
            ("same.py", "python"),
            ("touched.py", "python"),
            ("edited.py", "python"),
            ("comment.py", "python"),
            ("deleted.py", "python"),
            ("data.json", "data"),
        ],
    )
    write(tmp_path, "touched.py", SOURCE, LATER_NS)
    write(tmp_path, "edited.py", SOURCE.replace("price(2)", "price(5)"), LATER_NS)
    write(tmp_path, "comment.py", SOURCE + "# trailing comment\n", LATER_NS)
    (tmp_path / "deleted.py").unlink()
    write(tmp_path, "data.json", "[]", LATER_NS)

    changes = detect_changes(tmp_path, rows)
    by_path = {c.old.path: c for c in changes.changed}
    assert set(by_path) == {"edited.py", "comment.py", "deleted.py", "data.json"}
    assert [r.path for r in changes.restat] == ["touched.py"]
    assert changes.restat[0].id == rows["touched.py"].id
    for change in changes.changed:
        assert change.new.id == change.old.id  # ids carried over for the update
    assert list(by_path["edited.py"].removed_blocks().values()) == ["Cart.total"]
    assert by_path["comment.py"].removed_blocks() == {}
    assert by_path["deleted.py"].new.missing
    assert changes.warnings == []
    # accepts any iterable of rows too
    again = detect_changes(tmp_path, list(rows.values()))
    assert {c.old.path for c in again.changed} == set(by_path)


def test_detect_changes_nothing(tmp_path: Path) -> None:
    write(tmp_path, "a.py", SOURCE)
    changes = detect_changes(tmp_path, stored(tmp_path, [("a.py", "python")]))
    assert changes.changed == [] and changes.restat == []
    assert changes.summary() == []


def test_describe(tmp_path: Path) -> None:
    for name in ("a.py", "b.py", "c.py", "d.py", "e.py"):
        write(tmp_path, name, SOURCE)
    write(tmp_path, "x.json", "{}")
    rows = stored(
        tmp_path,
        [
            ("a.py", "python"),
            ("b.py", "python"),
            ("x.json", "data"),
            ("c.py", "python"),
            ("d.py", "python"),
            ("e.py", "python"),
        ],
    )
    write(
        tmp_path, "a.py", SOURCE.replace("price(2)", "price(5)").replace("x * LIMIT", "x"), LATER_NS
    )
    (tmp_path / "b.py").unlink()
    write(tmp_path, "x.json", "[]", LATER_NS)
    write(tmp_path, "c.py", SOURCE + "# comment\n", LATER_NS)
    changes = detect_changes(tmp_path, rows)
    # c.py changed content only (a comment): listed, without block names
    assert changes.summary() == [
        ChangedFile("a.py", ("Cart.total", "price")),
        ChangedFile("b.py", deleted=True),
        ChangedFile("x.json"),
        ChangedFile("c.py"),
    ]
    summary = changes.summary()
    assert describe_changes(summary) == (
        "a.py (Cart.total, price), b.py (deleted), x.json, and 1 more"
    )
    assert describe_changes(summary, 4) == "a.py (Cart.total, price), b.py (deleted), x.json, c.py"
    assert describe_changes(summary, 2) == "a.py (Cart.total, price), b.py (deleted), and 2 more"
    # A file that no longer parses has every block changed: the line stays short.
    broken = [ChangedFile("big.py", tuple(f"f{i}" for i in range(50)))]
    assert describe_changes(broken) == "big.py (f0, f1, f2, f3, f4, f5, +44 more)"
    assert [ChangedFile.from_json(c.to_json()) for c in summary] == summary


# -- parsing ahead (prepare) ------------------------------------------------------


def _fields(row: FileRow) -> tuple[object, ...]:
    return (row.path, row.kind, row.mtime_ns, row.size, row.digest, row.blocks, row.imports)


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The contents core.changes parses from now on (whole, or one body of it)."""
    seen: list[bytes] = []
    real = changes_mod._parse_python

    def counting(relpath: str, content: bytes, *args: object) -> object:
        seen.append(content)
        return real(relpath, content, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(changes_mod, "_parse_python", counting)
    return seen


def test_a_prepared_file_is_read_as_if_parsed_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "pkg/__init__.py", "")
    write(tmp_path, "pkg/shop.py", SOURCE + "\nfrom . import other\n")
    expected = state(tmp_path, "pkg/shop.py")
    write(tmp_path, "pkg/shop.py", SOURCE + "\nfrom . import another\n", LATER_NS)
    prepare(tmp_path, "pkg/shop.py")
    write(tmp_path, "pkg/shop.py", SOURCE + "\nfrom . import other\n", LATER_NS + 1)
    prepare(tmp_path, "pkg/shop.py")
    parsed = _parses(monkeypatch)
    row = state(tmp_path, "pkg/shop.py")
    assert parsed == []  # the prepared parse of this very content
    assert _fields(row)[2:] == (LATER_NS + 1, *_fields(expected)[3:])
    assert row.imports == expected.imports and "pkg.other" in row.imports


def test_a_prepared_parse_never_stands_for_other_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rewritten after the prepare with the same size and time: the stat cannot tell,
    # the content does.
    write(tmp_path, "shop.py", SOURCE.replace("x * LIMIT", "x + LIMIT"), LATER_NS)
    prepare(tmp_path, "shop.py")
    write(tmp_path, "shop.py", SOURCE.replace("x * LIMIT", "x - LIMIT"), LATER_NS)
    parsed = _parses(monkeypatch)
    row = state(tmp_path, "shop.py")
    assert len(parsed) == 1 and b"x - LIMIT" in parsed[0]
    whole = blocks_mod.parse_python((tmp_path / "shop.py").read_bytes(), "shop")
    assert row.blocks == [(b.name, b.start, b.end, b.checksum) for b in whole.blocks]


def test_a_prepared_parse_depends_on_the_package_the_file_is_in(tmp_path: Path) -> None:
    # `from . import x` means pkg.x only inside a package: an __init__.py created
    # after the prepare makes it parse again.
    write(tmp_path, "pkg/shop.py", "from . import other\n")
    prepare(tmp_path, "pkg/shop.py")
    write(tmp_path, "pkg/__init__.py", "")
    assert "pkg.other" in state(tmp_path, "pkg/shop.py").imports


def test_prepare_leaves_unreadable_and_broken_files_to_the_run(tmp_path: Path) -> None:
    prepare(tmp_path, "missing.py")
    prepare(tmp_path, "data.json")
    write(tmp_path, "broken.py", "def f(:\n")
    prepare(tmp_path, "broken.py")
    assert (state(tmp_path, "broken.py").error or "").startswith("syntax error at broken.py:1: ")
