"""core.reparse: after an edit, the blocks it gives are the ones a whole parse gives.

The oracle is `blocks.parse_python` of the new content. The edits are random
(inserted, deleted, replaced and re-indented lines, from a list of lines meant
to break the argument in core/reparse.py's docstring: dedents, open brackets,
strings, backslashes, tabs, new defs and classes, imports) on real modules.
"""

from __future__ import annotations

import dataclasses
import inspect
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testmon_watch.core import blocks as blocks_mod
from testmon_watch.core import changes
from testmon_watch.core.blocks import parse_python
from testmon_watch.core.reparse import reparse_python

REPO = Path(__file__).resolve().parents[2]

CRAFTED = textwrap.dedent(
    '''\
    """A module with every shape of function block."""
    import os
    from collections import OrderedDict


    def plain(a, b=1):
        """Doc."""
        x = a + b
        if x:
            return [i for i in range(x)]
        return None


    def one_liner(): return 1


    async def fetch(url):
        async with session() as s:
            data = await s.get(url)
        return data


    @decorator(arg=2)
    def decorated(
        a,
        b,
    ):
        text = """
    column zero inside a string
        """
        return text


    class Outer:
        attr = 1

        def method(self):
            def inner():
                return self
            return inner

        class Inner:
            def deep(self):
                import json
                return json.dumps({})

        def method(self):
            return 2


    def backslash(a, \\
                  b):
        total = a + \\
            b
        return total


    def last(x):
        return x
    '''
)

MODULES = {
    "crafted": CRAFTED.encode(),
    "dataclasses": Path(inspect.getfile(dataclasses)).read_bytes(),
    "textwrap": Path(inspect.getfile(textwrap)).read_bytes(),
    "blocks": (REPO / "testmon_watch" / "core" / "blocks.py").read_bytes(),
}

# Lines an edit may put in: body lines at the body's indentation, and the ones
# that must make the reparse step aside or give the same answer anyway.
LINES = [
    "",
    "    x = 1",
    "        y = 2",
    "  return 2",
    "            z = 3",
    "    # a comment",
    "    return None",
    "    pass",
    "    import sys",
    "    from . import sibling",
    "    from os import path as p",
    "    __import__('json')",
    "    value = await other()",
    "    def helper():",
    "        return 3",
    "    class Local:",
    "x = 1",
    "def new_top():",
    "class NewTop:",
    "@decorator",
    "  odd = 3",
    "\tx = 1",
    "    x = 1\t# tab",
    "\f",
    "    x = (1,",
    "    )",
    "    s = '''",
    "    '''",
    '    t = """',
    '"""',
    "    a = 1 + \\",
    "    \\",
    "    if x:",
    "    else:",
    "    lambda: 0",
    "    x = 1; y = 2",
    "# -*- coding: latin-1 -*-",
    "from __future__ import barry_as_FLUFL",
    "    1 <> 2",
    "    \x00",
]


def _whole(source: bytes, module: str | None) -> blocks_mod.FileBlocks | None:
    try:
        return parse_python(source, module)
    except SyntaxError:
        return None


def _edit(source: bytes, at: int, op: str, line: str, count: int) -> bytes:
    lines = source.decode("utf-8").split("\n")
    at %= len(lines)
    if op == "insert":
        lines[at:at] = [line] * count
    elif op == "delete":
        del lines[at : at + count]
    elif op == "replace":
        lines[at : at + count] = [line]
    elif op == "indent":
        lines[at] = "    " + lines[at]
    else:  # dedent
        lines[at] = lines[at][4:] if lines[at].startswith("    ") else lines[at].lstrip()
    return "\n".join(lines).encode("utf-8")


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::SyntaxWarning")
@settings(max_examples=800, deadline=None)
@given(
    name=st.sampled_from(sorted(MODULES)),
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10_000),
            st.sampled_from(["insert", "delete", "replace", "indent", "dedent"]),
            st.sampled_from(LINES),
            st.integers(min_value=1, max_value=3),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_a_reparse_gives_what_a_whole_parse_gives(
    name: str, edits: list[tuple[int, str, str, int]]
) -> None:
    module = None if name == "crafted" else name
    source = MODULES[name]
    old = parse_python(source, module)
    new_source = source
    for at, op, line, count in edits:
        new_source = _edit(new_source, at, op, line, count)
    answer = reparse_python(source, old, new_source, module)
    whole = _whole(new_source, module)
    if whole is None:
        assert answer is None, "a reparse answered for content that does not parse"
    elif answer is not None:
        assert answer == whole


BODY_EDITS = [
    # (module, old text, new text): each changes one function body only.
    ("crafted", "    x = a + b\n", "    x = a + b + 1\n    y = 2\n"),
    ("crafted", "        return [i for i in range(x)]\n", "        return []\n"),
    ("crafted", "        data = await s.get(url)\n", "        data = await s.post(url)\n"),
    ("crafted", "column zero inside a string\n", "column zero, edited\n\nand longer\n"),
    ("crafted", "            return json.dumps({})\n", "            return json.dumps([])\n"),
    ("crafted", "        return 2\n", "        if self:\n            return 3\n        return 2\n"),
    ("crafted", "    total = a + \\\n        b\n", "    total = a - \\\n        b\n"),
    ("crafted", "        def inner():", "        x = 1\n        def inner():"),
    ("crafted", "    return x\n", "    return x * 2\n"),
    ("textwrap", "        self.width = width\n", "        self.width = width or 70\n"),
]


@pytest.mark.parametrize(("name", "before", "after"), BODY_EDITS)
def test_an_edit_inside_one_body_is_reparsed_not_parsed_whole(
    name: str, before: str, after: str
) -> None:
    module = None if name == "crafted" else name
    source = MODULES[name]
    assert before.encode() in source
    new_source = source.replace(before.encode(), after.encode(), 1)
    answer = reparse_python(source, parse_python(source, module), new_source, module)
    assert answer is not None
    assert answer == parse_python(new_source, module)
    assert answer != parse_python(source, module)


@pytest.mark.parametrize(
    ("before", "after", "why"),
    [
        ("def one_liner(): return 1\n", "def one_liner(): return 2\n", "a one-line def"),
        ("    x = a + b\n", "x = a + b\n", "a line dedented out of the body"),
        ("    return None\n", "    return None\nx = 1\n", "a line after the body"),
        ("        return 2\n", "    return 2\n", "no deeper than its def"),
        ("    x = a + b\n", "  x = a + b\n", "indented otherwise"),
        ('    """Doc."""\n', "\\\n", "a backslash sets the indentation"),
        ("    x = a + b\n", "\tx = a + b\n", "a tab"),
        ("    x = a + b\n", "    import json\n    x = a + b\n", "a new import"),
        ("def plain(a, b=1):\n", "def plain(a, b=2):\n", "a header"),
        ("import os\n", "import os\nfrom __future__ import barry_as_FLUFL\n", "the parser's mode"),
    ],
)
def test_an_edit_the_argument_does_not_cover_is_parsed_whole(
    before: str, after: str, why: str
) -> None:
    source = MODULES["crafted"]
    new_source = source.replace(before.encode(), after.encode(), 1)
    assert new_source != source
    assert reparse_python(source, parse_python(source), new_source) is None, why


def test_the_engine_parses_the_next_edit_of_a_body_from_the_last_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mod.py"
    path.write_bytes(MODULES["crafted"])
    first = changes.parse_state(tmp_path, "mod.py", "python", path.read_bytes(), 1, 1)

    def whole_parse_not_expected(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed whole")

    monkeypatch.setattr(blocks_mod, "parse_python", whole_parse_not_expected)
    edited = MODULES["crafted"].replace(b"    return x\n", b"    return x + 1\n")
    path.write_bytes(edited)
    second = changes.parse_state(tmp_path, "mod.py", "python", edited, 2, 2)
    monkeypatch.undo()
    whole = parse_python(edited, "mod")
    assert second.blocks == [(b.name, b.start, b.end, b.checksum) for b in whole.blocks]
    assert second.imports == list(whole.imports)
    assert second.blocks != first.blocks


def test_a_save_that_fixes_a_syntax_error_in_a_body_is_reparsed_from_the_last_good_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "typo.py"
    good = MODULES["crafted"]
    broken = good.replace(b"    return x\n", b"    return x +\n")
    fixed = good.replace(b"    return x\n", b"    return x + 1\n")
    path.write_bytes(good)
    changes.parse_state(tmp_path, "typo.py", "python", good, 1, 1)
    error = changes.parse_state(tmp_path, "typo.py", "python", broken, 2, 2).error
    assert error is not None and error.startswith("syntax error at typo.py:")

    def whole_parse_not_expected(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed whole")

    monkeypatch.setattr(blocks_mod, "parse_python", whole_parse_not_expected)
    row = changes.parse_state(tmp_path, "typo.py", "python", fixed, 3, 3)
    monkeypatch.undo()
    whole = parse_python(fixed, "typo")
    assert row.error is None
    assert row.blocks == [(b.name, b.start, b.end, b.checksum) for b in whole.blocks]
