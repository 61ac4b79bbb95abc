"""Unit tests for testmon_watch.core.blocks."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testmon_watch.core import blocks as blocks_mod
from testmon_watch.core.blocks import (
    Block,
    FileBlocks,
    data_checksum,
    listing_checksum,
    parse_python,
)


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def sums(source: str | bytes, **kwargs: object) -> dict[str, int]:
    fb = parse_python(source, **kwargs)  # type: ignore[arg-type]
    return {b.name: b.checksum for b in fb.blocks}


def changed(a: str, b: str) -> set[str]:
    """Names of blocks whose checksum differs (or that exist on one side only)."""
    sa, sb = sums(a), sums(b)
    return {n for n in sa.keys() | sb.keys() if sa.get(n) != sb.get(n)}


BASE = src(
    '''
    """Module doc."""
    import os

    LIMIT = 10


    def fetch(url, timeout=LIMIT):
        """Fetch it."""
        data = os.path.join(url, "x")
        return data


    class Client:
        retries = 3

        @staticmethod
        def fetch(url):
            return url * 2

        async def close(self):
            await self.conn.close()


    def helper():
        return 1
    '''
)


# -- structure --------------------------------------------------------------


def test_block_names_and_ranges() -> None:
    fb = parse_python(BASE)
    assert [b.name for b in fb.blocks] == [
        "<module>",
        "fetch",
        "Client.fetch",
        "Client.close",
        "helper",
    ]
    by_name = {b.name: b for b in fb.blocks}
    assert by_name["<module>"].start == 1
    assert by_name["<module>"].end == len(BASE.splitlines())
    assert (by_name["fetch"].start, by_name["fetch"].end) == (8, 10)  # docstring counts
    assert (by_name["Client.fetch"].start, by_name["Client.fetch"].end) == (18, 18)
    assert (by_name["Client.close"].start, by_name["Client.close"].end) == (21, 21)
    assert (by_name["helper"].start, by_name["helper"].end) == (25, 25)
    assert fb.module_block() is fb.blocks[0]


def test_checksums_are_signed_64bit() -> None:
    fb = parse_python(BASE)
    for b in fb.blocks:
        assert -(2**63) <= b.checksum < 2**63
    assert -(2**63) <= data_checksum(b"abc") < 2**63
    assert -(2**63) <= listing_checksum(["a"]) < 2**63


def test_checksums_and_by_checksum() -> None:
    fb = parse_python(BASE)
    assert fb.checksums() == frozenset(b.checksum for b in fb.blocks)
    assert len(fb.checksums()) == len(fb.blocks)
    for b in fb.blocks:
        assert fb.by_checksum()[b.checksum] is b


def test_deterministic() -> None:
    assert parse_python(BASE) == parse_python(BASE)


def test_empty_file() -> None:
    fb = parse_python("")
    assert len(fb.blocks) == 1
    assert fb.module_block().start == 1
    assert fb.module_block().end == 1
    assert fb.block_for_line(1) is fb.module_block()
    assert fb.imports == ()


def test_module_end_without_trailing_newline() -> None:
    fb = parse_python("x = 1\ny = 2")
    assert fb.module_block().end == 2
    fb = parse_python("x = 1\ny = 2\n\n\n")
    assert fb.module_block().end == 4


def test_file_blocks_requires_module_block() -> None:
    with pytest.raises(ValueError, match="must start with the module block"):
        FileBlocks(blocks=(), imports=())
    with pytest.raises(ValueError, match="must start with the module block"):
        FileBlocks(blocks=(Block("f", 1, 2, 0),), imports=())


# -- insensitivity ------------------------------------------------------------


def test_whitespace_comment_blank_line_edits_change_nothing() -> None:
    edited = src(
        '''
        """Module doc."""
        import os   # the os module

        # a comment


        LIMIT   =   10
        def fetch(url,
                  timeout = LIMIT):
            """Fetch it."""

            # comment inside
            data = os.path.join( url ,"x" )


            return data
        class Client:

            retries = 3   # comment
            @staticmethod
            def fetch(url):
                return url*2
            async def close(self):
                # hi
                await self.conn.close()
        def helper(): return 1
        '''
    )
    assert sums(edited) == sums(BASE)
    assert changed(BASE, edited) == set()


def test_moving_a_function_keeps_checksums() -> None:
    moved = BASE.replace("def helper():\n    return 1\n", "")
    moved = moved.replace("LIMIT = 10\n", "LIMIT = 10\n\n\ndef helper():\n    return 1\n")
    assert moved != BASE
    a, b = sums(BASE), sums(moved)
    assert {k: v for k, v in a.items() if k != "<module>"} == {
        k: v for k, v in b.items() if k != "<module>"
    }
    # Function order is part of the module structure (coarse rule).
    assert a["<module>"] != b["<module>"]
    # Moved by blank lines only: nothing changes at all.
    shifted = BASE.replace("def helper", "\n\n\n\ndef helper")
    assert sums(shifted) == a
    fb = parse_python(shifted)
    assert next(b for b in fb.blocks if b.name == "helper").start == 29


def test_quote_style_does_not_matter() -> None:
    assert sums("def f():\n    return 'a'\n") == sums('def f():\n    return "a"\n')


# -- sensitivity --------------------------------------------------------------


def test_editing_one_body_changes_only_that_block() -> None:
    assert changed(BASE, BASE.replace("url * 2", "url * 3")) == {"Client.fetch"}
    assert changed(BASE, BASE.replace('"x"', '"y"')) == {"fetch"}
    assert changed(BASE, BASE.replace("return 1", "return 2")) == {"helper"}
    assert changed(BASE, BASE.replace("await self.conn.close()", "pass")) == {"Client.close"}


def test_function_docstring_edit_changes_that_block() -> None:
    assert changed(BASE, BASE.replace("Fetch it.", "Fetch that.")) == {"fetch"}


def test_module_docstring_edit_changes_module() -> None:
    assert changed(BASE, BASE.replace("Module doc.", "Other doc.")) == {"<module>"}


def test_identical_bodies_different_names_differ() -> None:
    fb = parse_python("def a():\n    return 1\n\n\ndef b():\n    return 1\n")
    assert fb.blocks[1].checksum != fb.blocks[2].checksum
    s = sums("class A:\n    def m(self):\n        pass\nclass B:\n    def m(self):\n        pass\n")
    assert s["A.m"] != s["B.m"]


def test_renaming_changes_checksum() -> None:
    renamed = BASE.replace("def helper", "def helper2")
    a, b = sums(BASE), sums(renamed)
    assert "helper2" in b and "helper" not in b
    assert a["helper"] != b["helper2"]
    assert a["<module>"] != b["<module>"]


def test_renaming_class_changes_method_checksums() -> None:
    b = sums(BASE.replace("class Client", "class Session"))
    assert sums(BASE)["Client.fetch"] != b["Session.fetch"]


def test_nested_function_edit_changes_outer_block() -> None:
    before = src(
        """
        def outer():
            x = 1

            def inner():
                return x + 1

            class Local:
                def method(self):
                    return 5

            return inner
        """
    )
    fb = parse_python(before)
    assert [b.name for b in fb.blocks] == ["<module>", "outer"]
    assert changed(before, before.replace("x + 1", "x + 2")) == {"outer"}
    assert changed(before, before.replace("return 5", "return 6")) == {"outer"}
    assert changed(
        before, before.replace("def inner", "def inner2").replace("return inner", "return inner2")
    ) == {"outer"}


def test_nested_class_method_qualname() -> None:
    code = src(
        """
        class Outer:
            class Inner:
                def m(self):
                    return 1

                class Deep:
                    async def n(self):
                        return 2

            def m(self):
                return 3
        """
    )
    fb = parse_python(code)
    assert [b.name for b in fb.blocks] == [
        "<module>",
        "Outer.Inner.m",
        "Outer.Inner.Deep.n",
        "Outer.m",
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("@staticmethod", "@classmethod"),  # decorator
        ("timeout=LIMIT", "timeout=5"),  # default value
        ("def fetch(url, timeout", "def fetch(uri, timeout"),  # signature
        ("retries = 3", "retries = 4"),  # class attribute
        ("LIMIT = 10", "LIMIT = 11"),  # constant
        ("import os", "import os.path"),  # import
    ],
)
def test_import_time_edits_change_only_module(old: str, new: str) -> None:
    assert old in BASE
    assert changed(BASE, BASE.replace(old, new, 1)) == {"<module>"}


def test_return_annotation_edit_changes_only_module() -> None:
    a = "def f(x: int) -> int:\n    return x\n"
    b = "def f(x: str) -> str:\n    return x\n"
    assert changed(a, b) == {"<module>"}


def test_adding_function_changes_module_only() -> None:
    added = BASE + "\n\ndef extra():\n    return 42\n"
    a, b = sums(BASE), sums(added)
    assert set(b) == set(a) | {"extra"}
    for name in a:
        if name != "<module>":
            assert a[name] == b[name]
    assert a["<module>"] != b["<module>"]


def test_async_def_is_a_block() -> None:
    code = "async def go():\n    await x()\n\n\nasync def go2():\n    await x()\n"
    fb = parse_python(code)
    assert [(b.name, b.start, b.end) for b in fb.blocks[1:]] == [("go", 2, 2), ("go2", 6, 6)]
    assert fb.blocks[1].checksum != fb.blocks[2].checksum
    # async vs sync with the same body: the module dump differs (AsyncFunctionDef vs FunctionDef)
    assert changed("async def go():\n    pass\n", "def go():\n    pass\n") == {"<module>"}


def test_redefinition_suffix() -> None:
    code = src(
        """
        def f():
            return 1

        def f():
            return 2

        class A:
            def m(self):
                pass

            def m(self):
                pass

        if True:
            def f():
                return 3
        """
    )
    fb = parse_python(code)
    assert [b.name for b in fb.blocks] == ["<module>", "f", "f#2", "A.m", "A.m#2", "f#3"]
    assert len(fb.checksums()) == 6


def test_defs_in_control_flow_at_module_level_are_blocks() -> None:
    code = src(
        """
        try:
            def f():
                return 1
        except ImportError:
            def f():
                return 2
        """
    )
    assert [b.name for b in parse_python(code).blocks] == ["<module>", "f", "f#2"]


def test_lambdas_are_not_blocks() -> None:
    fb = parse_python("f = lambda x: x + 1\n\n\nclass A:\n    g = lambda self: 2\n")
    assert [b.name for b in fb.blocks] == ["<module>"]
    assert changed("f = lambda x: x + 1\n", "f = lambda x: x + 2\n") == {"<module>"}


def test_decorator_and_signature_are_outside_the_range() -> None:
    code = src(
        """
        @decorator(
            arg=1,
        )
        def f(
            a,
            b=2,
        ):
            return a + b
        """
    )
    fb = parse_python(code)
    f = fb.blocks[1]
    assert (f.start, f.end) == (8, 8)
    for line in range(1, 8):
        assert fb.block_for_line(line).name == "<module>"
    assert fb.block_for_line(8) is f


# -- block_for_line -------------------------------------------------------------


def test_block_for_line() -> None:
    fb = parse_python(BASE)

    def name(line: int) -> str:
        return fb.block_for_line(line).name

    assert name(1) == "<module>"  # module docstring
    assert name(2) == "<module>"  # import
    assert name(7) == "<module>"  # def line
    assert name(8) == "fetch"  # docstring
    assert name(9) == "fetch"
    assert name(10) == "fetch"
    assert name(11) == "<module>"  # blank after function
    assert name(13) == "<module>"  # class line
    assert name(14) == "<module>"  # class attribute
    assert name(16) == "<module>"  # decorator
    assert name(17) == "<module>"  # def line
    assert name(18) == "Client.fetch"
    assert name(20) == "<module>"  # async def line
    assert name(21) == "Client.close"
    assert name(25) == "helper"
    assert name(0) == "<module>"
    assert name(10_000) == "<module>"


def test_block_for_line_nested_function_and_one_liner() -> None:
    code = src(
        """
        def outer():
            def inner():
                return 1
            return inner
        def one(): return 1
        x = 1
        """
    )
    fb = parse_python(code)
    assert fb.block_for_line(1).name == "<module>"
    for line in (2, 3, 4):
        assert fb.block_for_line(line).name == "outer"
    assert fb.block_for_line(5).name == "one"  # one-liner: body on the def line
    one = fb.blocks[2]
    assert (one.start, one.end) == (5, 5)
    assert fb.block_for_line(6).name == "<module>"


def test_block_for_line_many_functions() -> None:
    code = "".join(f"def f{i}():\n    a = {i}\n    return a\n\n" for i in range(200))
    fb = parse_python(code)
    assert len(fb.blocks) == 201
    for i in range(200):
        base = 4 * i + 1
        assert fb.block_for_line(base).name == "<module>"
        assert fb.block_for_line(base + 1).name == f"f{i}"
        assert fb.block_for_line(base + 2).name == f"f{i}"
        assert fb.block_for_line(base + 3).name == "<module>"


# -- errors and encodings ---------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "def f(:\n    pass\n",
        "x = (\n",
        "  x = 1\n",
        "x = 1\x00\n",
        b"x = 1\x00\n",
        b"# -*- coding: no-such-codec -*-\nx = 1\n",
        b"x = '\xff'\n",  # invalid utf-8 without cookie
    ],
)
def test_syntax_errors(bad: str | bytes) -> None:
    with pytest.raises(SyntaxError):
        parse_python(bad)


def test_bytes_with_coding_cookie() -> None:
    text = "# -*- coding: latin-1 -*-\ndef f():\n    return 'caf\xe9'\n"
    raw = text.encode("latin-1")
    fb = parse_python(raw)
    assert [b.name for b in fb.blocks] == ["<module>", "f"]
    assert fb.module_block().end == 3
    # Same AST as the decoded text.
    assert sums(raw) == sums(text)
    assert sums(raw) != sums(text.replace("caf\xe9", "cafe"))


def test_bytes_utf8_bom_and_crlf() -> None:
    text = "def f():\r\n    return 1\r\n"
    fb = parse_python(b"\xef\xbb\xbf" + text.encode())
    assert [(b.name, b.start, b.end) for b in fb.blocks] == [("<module>", 1, 2), ("f", 2, 2)]
    assert sums(text) == sums(text.replace("\r\n", "\n"))


def test_deeply_nested_expression() -> None:
    code = "def f():\n    return " + "+".join(["1"] * 2000) + "\n"
    fb = parse_python(code)
    assert [b.name for b in fb.blocks] == ["<module>", "f"]


# -- imports ------------------------------------------------------------------------


def imports(code: str, module_name: str | None = None, is_package: bool = False) -> tuple[str, ...]:
    return parse_python(src(code), module_name, is_package).imports


def test_import_dotted_yields_parents() -> None:
    assert imports("import a.b.c\n") == ("a.b.c", "a", "a.b")
    assert imports("import a.b as ab, os\n") == ("a.b", "a", "os")


def test_from_import_yields_candidates() -> None:
    assert imports("from x.y import n1, n2 as z\n") == ("x.y", "x", "x.y.n1", "x.y.n2")


def test_star_import() -> None:
    assert imports("from x.y import *\n") == ("x.y", "x")


def test_import_dedup_first_seen_order() -> None:
    assert imports("import b\nimport a\nimport b\nfrom a import c\nimport a.c\n") == (
        "b",
        "a",
        "a.c",
    )


def test_imports_anywhere() -> None:
    code = """
        from __future__ import annotations
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from collections.abc import Iterator

        try:
            import ujson as json
        except ImportError:
            import json

        def load():
            import pickle
            def inner():
                from email import message
            return pickle

        class C:
            def m(self):
                import zlib
        """
    got = imports(code)
    for name in (
        "__future__",
        "typing",
        "typing.TYPE_CHECKING",
        "collections.abc",
        "collections",
        "collections.abc.Iterator",
        "ujson",
        "json",
        "pickle",
        "email",
        "email.message",
        "zlib",
    ):
        assert name in got, name
    assert len(got) == len(set(got))


def test_relative_imports_module() -> None:
    code = """
        from . import sibling
        from .other import thing
        from .. import up
        from ..pkg2.mod import name
        """
    assert imports(code, "top.pkg.mod") == (
        "top.pkg",
        "top",
        "top.pkg.sibling",
        "top.pkg.other",
        "top.pkg.other.thing",
        "top.up",
        "top.pkg2.mod",
        "top.pkg2",
        "top.pkg2.mod.name",
    )


def test_relative_imports_package_init() -> None:
    code = """
        from . import sub
        from .core import x
        from .. import sibling
        """
    assert imports(code, "top.pkg", is_package=True) == (
        "top.pkg",
        "top",
        "top.pkg.sub",
        "top.pkg.core",
        "top.pkg.core.x",
        "top.sibling",
    )


def test_relative_imports_skipped() -> None:
    code = "from . import a\nfrom .b import c\nimport os\n"
    assert imports(code) == ("os",)  # no module_name
    assert imports(code, "toplevel") == ("os",)  # level 1 beyond a top-level module
    assert imports("from ... import a\nimport os\n", "p.m") == ("os",)  # beyond top-level package
    assert imports("from .. import a\n", "p", is_package=True) == ()


def test_dynamic_imports_with_literals() -> None:
    code = """
        import importlib
        from importlib import import_module

        def plugins(name):
            importlib.import_module("a.b")
            import_module("c")
            __import__("d.e")
            importlib.import_module(name="f")
            importlib.import_module(name)          # not a literal
            importlib.import_module(".rel", "pkg")  # relative: skipped
            other.import_module("nope")
        """
    got = imports(code)
    assert got == ("importlib", "importlib.import_module", "a.b", "a", "c", "d.e", "d", "f")


def test_imports_do_not_affect_block_names() -> None:
    fb = parse_python("import os\n\ndef f():\n    import sys\n    return sys\n")
    assert [b.name for b in fb.blocks] == ["<module>", "f"]
    assert fb.imports == ("os", "sys")


# -- data / listing -------------------------------------------------------------------


def test_data_checksum() -> None:
    assert data_checksum(b"abc") == data_checksum(b"abc")
    assert data_checksum(b"abc") != data_checksum(b"abd")
    assert data_checksum(b"") != data_checksum(b"\x00")
    assert isinstance(data_checksum(b""), int)


def test_listing_checksum_order_independent() -> None:
    assert listing_checksum(["b", "a", "c"]) == listing_checksum(["a", "c", "b"])
    assert listing_checksum(iter(["x", "y"])) == listing_checksum(("y", "x"))
    assert listing_checksum(["a", "b"]) != listing_checksum(["a", "b", "c"])
    assert listing_checksum(["ab"]) != listing_checksum(["a", "b"])
    assert listing_checksum([]) != listing_checksum([""])


# -- properties -------------------------------------------------------------------------

PROPERTY_SOURCE = src(
    """
    import os
    X = [
        1,
        2,
    ]
    @dec
    def f(a,
          b=1):
        c = a + b
        if c:
            return (
                c
            )
        return os
    class K:
        y = 2
        def m(self):
            def inner():
                return 3
            return inner
    async def g():
        await h()
    """
)
PROPERTY_LINES = PROPERTY_SOURCE.splitlines(keepends=True)
PROPERTY_SUMS = sums(PROPERTY_SOURCE)

_filler = st.one_of(
    st.just("\n"),
    st.builds(
        lambda indent, text: " " * indent + "# " + text + "\n",
        st.integers(0, 12),
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=20),
    ),
    st.builds(lambda indent: " " * indent + "\n", st.integers(0, 12)),
)


@settings(max_examples=75, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(PROPERTY_LINES)), _filler), max_size=8))
def test_inserting_blank_lines_and_comments_never_changes_checksums(
    inserts: list[tuple[int, str]],
) -> None:
    lines = list(PROPERTY_LINES)
    for pos, filler in sorted(inserts, key=lambda t: t[0], reverse=True):
        lines.insert(pos, filler)
    edited = "".join(lines)
    assert sums(edited) == PROPERTY_SUMS
    # Every original body line still maps to the same block name.
    fb = parse_python(edited)
    assert {b.name for b in fb.blocks} == set(PROPERTY_SUMS)


# -- remembered function bodies ------------------------------------------------------


def fresh_parse(source: str | bytes) -> FileBlocks:
    """What a process that never parsed anything computes for `source`."""
    saved, blocks_mod._BODY_MEMO = blocks_mod._BODY_MEMO, blocks_mod._BodyMemo()
    try:
        return parse_python(source, "pkg.mod")
    finally:
        blocks_mod._BODY_MEMO = saved


def parse_after(before: str | bytes, after: str | bytes) -> FileBlocks:
    """`after` parsed by a process that parsed `before` first (its bodies remembered)."""
    saved, blocks_mod._BODY_MEMO = blocks_mod._BODY_MEMO, blocks_mod._BodyMemo()
    try:
        parse_python(before, "pkg.mod")
        assert blocks_mod._BODY_MEMO  # the bodies of `before` are remembered
        return parse_python(after, "pkg.mod")
    finally:
        blocks_mod._BODY_MEMO = saved


def test_the_remembered_bodies_hold_a_bounded_amount_of_source() -> None:
    memo = blocks_mod._BodyMemo(limit=10)
    memo.put(("f", 4, 12, "abcd"), (1, ()))
    memo.put(("g", 4, 12, "efgh"), (2, ()))
    memo.put(("f", 4, 12, "abcd"), (1, ()))  # known: held once
    assert (len(memo), memo.chars) == (2, 8)
    memo.put(("h", 4, 12, "ijkl"), (3, ("os",)))  # 12 > 10: the oldest goes
    assert (len(memo), memo.chars) == (2, 8)
    assert memo.get(("f", 4, 12, "abcd")) is None
    assert memo.get(("h", 4, 12, "ijkl")) == (3, ("os",))
    saved, blocks_mod._BODY_MEMO = blocks_mod._BODY_MEMO, blocks_mod._BodyMemo(limit=50)
    try:
        parse_python(MEMO_BASE, "pkg.mod")  # its bodies hold more than 50 characters
        assert 0 < blocks_mod._BODY_MEMO.chars <= 50
    finally:
        blocks_mod._BODY_MEMO = saved


MEMO_BASE = src(
    """
    import os


    def add(a, b):
        return a + b


    def mul(a, b):
        return a * b


    class Cart:
        def total(self):
            import json
            return json.dumps(sum(self.items))

        def count(self):
            return len(self.items)


    def one(): return 1
    """
)

MEMO_EDITS = {
    "a body": ("return a + b", "return a + b + 1"),
    "a body, same length": ("return a * b", "return a - b"),
    "a one-line def": ("def one(): return 1", "def one(): return 2"),
    "a name": ("def mul(", "def times("),
    "a class name": ("class Cart:", "class Basket:"),
    "the lines above": ("import os\n", "import os\nimport sys\n\n\n\n"),
    "an import in a body": ("import json", "import pickle as json"),
    "a nested function": (
        "return len(self.items)",
        "def inner():\n            return 0\n        return len(self.items) + inner()",
    ),
    "two bodies swapped": ("return a + b", "return a * b"),
    "a non-ASCII string": ("return a + b", "return a + 'é€' + b"),
}


@pytest.mark.parametrize("edit", list(MEMO_EDITS), ids=list(MEMO_EDITS))
def test_a_remembered_body_gives_what_a_fresh_parse_gives(edit: str) -> None:
    old, new = MEMO_EDITS[edit]
    after = MEMO_BASE.replace(old, new, 1)
    assert after != MEMO_BASE
    assert parse_after(MEMO_BASE, after) == fresh_parse(after)
    assert parse_after(after, MEMO_BASE) == fresh_parse(MEMO_BASE)


def test_an_edited_body_is_never_taken_for_the_remembered_one() -> None:
    after = MEMO_BASE.replace("return len(self.items)", "return len(self.items) - 1")
    before_sums = {b.name: b.checksum for b in fresh_parse(MEMO_BASE).blocks}
    after_sums = {b.name: b.checksum for b in parse_after(MEMO_BASE, after).blocks}
    assert {n for n in after_sums if after_sums[n] != before_sums[n]} == {"Cart.count"}


@pytest.mark.parametrize(
    "separator",
    ["\u2028", "\x0c", "\x1c", "\x85"],
    ids=["line-separator", "form-feed", "file-separator", "next-line"],
)
def test_bodies_after_a_character_only_str_splitlines_breaks_on(separator: str) -> None:
    # The parser ends lines at \n, \r\n and \r only. Were the memo to number lines
    # like str.splitlines, `last` would be keyed by the line above its real last
    # line, and the edit of that line would find the old body's checksum.
    before = src(
        f"""
        def first():
            return "a{separator}b"


        def last():
            x = 1
            return x
        """
    )
    after = before.replace("return x", "return 2")  # the same columns
    assert parse_after(before, after) == fresh_parse(after)
    assert sums(after)["last"] != sums(before)["last"]


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["crlf", "cr"])
def test_bodies_in_files_with_other_line_endings(newline: str) -> None:
    before = MEMO_BASE.replace("\n", newline)
    after = before.replace("return len(self.items)", "return len(self.items) - 1")
    assert parse_after(before, after) == fresh_parse(after)
    assert parse_after(before.encode(), after.encode()) == fresh_parse(after.encode())


def test_bodies_in_a_file_with_a_coding_cookie_and_a_bom() -> None:
    text = "# -*- coding: latin-1 -*-\ndef f():\n    return 'caf\xe9'\n\n\ndef g():\n    return 1\n"
    before = text.encode("latin-1")
    after = text.replace("return 1", "return 2").encode("latin-1")
    assert parse_after(before, after) == fresh_parse(after)
    bom = b"\xef\xbb\xbf"
    before8, after8 = bom + text[26:].encode(), bom + text[26:].replace("1", "2").encode()
    assert parse_after(before8, after8) == fresh_parse(after8)


_BODIES = st.sampled_from(
    [
        "return a",
        "return b",
        "return a + b",
        "x = a\n    return x",
        "import os\n    return os",
        "pass",
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["f", "g", "h"]), _BODIES), min_size=1, max_size=5),
    st.lists(st.tuples(st.sampled_from(["f", "g", "h"]), _BODIES), min_size=1, max_size=5),
)
def test_any_file_parsed_after_another_gives_what_a_fresh_parse_gives(
    before: list[tuple[str, str]], after: list[tuple[str, str]]
) -> None:
    def module(functions: list[tuple[str, str]]) -> str:
        return "".join(f"def {name}(a, b):\n    {body}\n\n\n" for name, body in functions)

    assert parse_after(module(before), module(after)) == fresh_parse(module(after))
