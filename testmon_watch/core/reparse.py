"""The blocks of a Python file after an edit inside one function body, from the last parse.

A save usually changes one function of a large module, and `ast.parse` of the
whole file is then most of the way from the save to the run's release (more-
itertools' more.py, 5,000 lines: 21 ms of a 29 ms release). When the changed
lines lie inside one function's body, the file's blocks are those of the last
parse with that one body checksummed again on its own (`blocks.parse_body`)
and the blocks below it moved by the lines it gained or lost.

`reparse_python` answers only when that is exactly what `blocks.parse_python`
of the new content gives, and None otherwise (the caller parses the whole
file). The argument, with the checks that carry it:

* The text before the changed lines is the old file's, and so is the text
  after them: `ast.parse` numbers lines as `blocks.parser_lines` splits them,
  and the two splits share a prefix and a suffix of equal lines.
* The changed lines lie between the first line of function B's body and B's
  last line (B a block: a function at module or class level). The body,
  parsed on its own, must give B's recorded checksum in the old text: so its
  first line starts the first statement (no one-line ``def f(): ...``, no
  header sharing that line), and the line before it must not end in a
  backslash, so the tokenizer meets the body at the start of a logical line in
  the file as it does on its own.
* In the new text, the body's lines parse on their own into one function
  ending on the last of them: no line dedents out of it, nothing is left open
  at its end, and the lines after it start a logical line as they did. Its
  first statement is indented as the old one was, on a line no backslash
  joins to the lines above: on its own any indentation opens a body, in the
  file only one deeper than the def's. With no tab or
  form feed in the body (old or new) indentation compares the same way under
  the stand-in header as under the real ones, whose lines did not change.
* The module block covers everything outside function bodies: its checksum
  stays; only its last line moves. Names stay (no header changed, and a def
  inside a function is part of that function's block). The file's imports
  stay when the body names the same imports in the same order, else None.
* The first two lines are unchanged (a coding declaration lives there), and a
  file that imports ``barry_as_FLUFL`` from ``__future__`` (which changes how
  the parser reads ``<>``) is always parsed whole.

tests/unit/test_reparse.py checks the result against a whole parse after
random edits of real modules.
"""

from __future__ import annotations

from testmon_watch.core.blocks import Block, FileBlocks, parse_body, parser_lines

# Lines the file's coding declaration may be on: an edit there re-decodes the file.
_CODING_LINES = 2


def reparse_python(
    old_source: bytes,
    old: FileBlocks,
    new_source: bytes,
    module_name: str | None = None,
    is_package: bool = False,
) -> FileBlocks | None:
    """`parse_python(new_source, ...)`, when the edit from `old_source` allows it; else None.

    `old` must be `parse_python(old_source, module_name, is_package)`.
    """
    if b"barry_as_FLUFL" in new_source:
        return None
    old_lines = parser_lines(old_source)
    new_lines = parser_lines(new_source)
    if old_lines is None or new_lines is None:
        return None
    prefix, old_end, new_end = _changed_span(old_lines, new_lines)
    if prefix == old_end == new_end:
        return old  # the same lines
    if prefix < _CODING_LINES:
        return None
    block = _enclosing_function(old, prefix, old_end)
    if block is None or block.start < 2 or old_lines[block.start - 2].endswith("\\"):
        return None
    delta = new_end - old_end
    old_body = old_lines[block.start - 1 : block.end]
    new_body = new_lines[block.start - 1 : block.end + delta]
    if _has_tab_or_form_feed(old_body) or _has_tab_or_form_feed(new_body):
        return None
    before = parse_body(old_body, block.name, module_name, is_package)
    if before is None or before.checksum != block.checksum or before.first != 0:
        return None
    after = parse_body(new_body, block.name, module_name, is_package)
    if after is None or after.imports != before.imports:
        return None
    if _indentation(new_body[after.first]) != _indentation(old_body[0]) or any(
        line.endswith("\\") for line in new_body[: after.first]
    ):
        # On its own any indentation opens the body; in the file it must be
        # deeper than the def's, which the old body's is. A logical line takes
        # its indentation from its first line: one the first statement
        # continues (a backslash) would then decide it.
        return None
    return _moved(old, block, after.checksum, block.start + after.first, delta)


def _changed_span(old: list[str], new: list[str]) -> tuple[int, int, int]:
    """(p, old_end, new_end): old[p:old_end] became new[p:new_end], all else is equal."""
    limit = min(len(old), len(new))
    prefix = 0
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return prefix, len(old) - suffix, len(new) - suffix


def _enclosing_function(blocks: FileBlocks, start: int, end: int) -> Block | None:
    """The function block whose body's lines hold the 0-based line span [start, end)."""
    # The line before the span (or its first line) tells which block can hold it.
    for block in blocks.blocks[1:]:
        if block.start - 1 <= start and end <= block.end:
            return block
        if block.start - 1 > start:
            break
    return None


def _indentation(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _has_tab_or_form_feed(lines: list[str]) -> bool:
    return any("\t" in line or "\f" in line for line in lines)


def _moved(old: FileBlocks, changed: Block, checksum: int, start: int, delta: int) -> FileBlocks:
    module = old.blocks[0]
    blocks = [Block(module.name, module.start, module.end + delta, module.checksum)]
    for block in old.blocks[1:]:
        if block is changed:
            blocks.append(Block(block.name, start, block.end + delta, checksum))
        elif block.start > changed.end:
            blocks.append(Block(block.name, block.start + delta, block.end + delta, block.checksum))
        else:
            blocks.append(block)
    return FileBlocks(blocks=tuple(blocks), imports=old.imports)
