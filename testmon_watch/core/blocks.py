"""Cut a Python source file into checksummed blocks (module + function bodies) and list its imports.

A file is split into one *module block* (``<module>``: everything that runs at
import time -- imports, constants, class bodies, decorators, signatures,
default values) and one *function block* per ``def``/``async def`` whose
enclosing scopes are only the module and classes. A function nested inside a
function belongs to the enclosing function's block.

Checksums are signed 64-bit integers (they fit SQLite ``INTEGER`` and
``array('q')``) computed with BLAKE2b over a canonical AST dump that ignores
line numbers, so whitespace, comments, blank lines and moves do not change
them. A function block's checksum also covers its qualified name, so two
functions with identical bodies differ.

Everything is computed with one ``ast.parse`` and one recursive walk that
produces the module dump, the function-body dumps and the import list at the
same time. The dump is equivalent to ``ast.dump(include_attributes=False)``
(same information, positional fields, more compact).

The walk dominates a parse (more-itertools' more.py: ~30 ms of ~50), and a
save usually changes one function of many. So a function body's checksum and
the imports it names are remembered per process (`_BODY_MEMO`), keyed by the
function's name and the exact source lines its body spans: equal lines give
an equal body (the same text parses to the same statements), so a remembered
checksum is exactly the one the walk would compute.

Pure stdlib, no pytest/textual/watchdog.
"""

from __future__ import annotations

import ast
import io
import sys
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from hashlib import blake2b

__all__ = [
    "MODULE_BLOCK_NAME",
    "Block",
    "BodyParse",
    "FileBlocks",
    "data_checksum",
    "listing_checksum",
    "parse_body",
    "parse_python",
    "parser_lines",
]

MODULE_BLOCK_NAME = "<module>"

_AST = ast.AST
_FUNCTION_TYPES: frozenset[type] = frozenset({ast.FunctionDef, ast.AsyncFunctionDef})
_SPECIAL_TYPES: frozenset[type] = frozenset(
    {ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Call}
)
_DYNAMIC_IMPORT_FUNCS = frozenset({"__import__", "import_module"})
# (qualified name, body's first column, last column, its source lines)
_BodyKey = tuple[str, int, int, str]
# Characters of source the remembered bodies may hold (a few MB): a one-shot run that
# parses a large project once gains nothing from them and must not keep it all.
_BODY_MEMO_CHARS = 4_000_000


class _BodyMemo:
    """Function bodies remembered (see the module docstring): key -> (checksum, imports).

    Bounded by the characters of source the keys hold; the oldest go first.
    """

    __slots__ = ("entries", "chars", "limit")

    def __init__(self, limit: int = _BODY_MEMO_CHARS) -> None:
        self.entries: dict[_BodyKey, tuple[int, tuple[str, ...]]] = {}
        self.chars = 0
        self.limit = limit

    def get(self, key: _BodyKey) -> tuple[int, tuple[str, ...]] | None:
        return self.entries.get(key)

    def put(self, key: _BodyKey, value: tuple[int, tuple[str, ...]]) -> None:
        if key not in self.entries:
            self.chars += len(key[3])
        self.entries[key] = value
        while self.chars > self.limit and self.entries:
            oldest = next(iter(self.entries))
            self.chars -= len(oldest[3])
            del self.entries[oldest]

    def __len__(self) -> int:
        return len(self.entries)


_BODY_MEMO = _BodyMemo()
# Recursion limit used for a retry when a pathologically deep expression
# (e.g. thousands of chained ``+``) exhausts the default limit.
_DEEP_RECURSION_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Block:
    """One checksummed region of a file."""

    name: str
    """``"<module>"`` or the qualified name (``"Client.fetch"``, ``"f#2"`` for a redefinition)."""
    start: int
    """First line of the body (1-based); 1 for the module block."""
    end: int
    """Last line of the function; last line of the file for the module block."""
    checksum: int
    """Signed 64-bit checksum."""


@dataclass(frozen=True)
class FileBlocks:
    """The blocks and imports of one Python file."""

    blocks: tuple[Block, ...]
    """``blocks[0]`` is the module block; function blocks follow, sorted by start."""
    imports: tuple[str, ...]
    """Absolute dotted module names this file may import (first-seen order, unique)."""
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.blocks or self.blocks[0].name != MODULE_BLOCK_NAME:
            raise ValueError("FileBlocks.blocks must start with the module block")
        object.__setattr__(self, "_starts", tuple(b.start for b in self.blocks[1:]))

    def module_block(self) -> Block:
        """The ``<module>`` block."""
        return self.blocks[0]

    def block_for_line(self, line: int) -> Block:
        """The function block whose ``[start, end]`` contains ``line``, else the module block."""
        i = bisect_right(self._starts, line)
        if i:
            block = self.blocks[i]  # blocks[1:][i - 1]
            if line <= block.end:
                return block
        return self.blocks[0]

    def checksums(self) -> frozenset[int]:
        """All block checksums."""
        return frozenset(b.checksum for b in self.blocks)

    def by_checksum(self) -> dict[int, Block]:
        """Map checksum -> block."""
        return {b.checksum: b for b in self.blocks}


def _digest_to_int(digest: bytes) -> int:
    return int.from_bytes(digest, "little", signed=True)


def data_checksum(content: bytes) -> int:
    """Signed 64-bit checksum of a data file's content."""
    return _digest_to_int(blake2b(content, digest_size=8).digest())


def listing_checksum(names: Iterable[str]) -> int:
    """Signed 64-bit checksum of a directory listing (order-independent: names are sorted)."""
    h = blake2b(digest_size=8)
    for name in sorted(names):
        raw = name.encode("utf-8", "surrogateescape")
        h.update(len(raw).to_bytes(4, "little"))
        h.update(raw)
    return _digest_to_int(h.digest())


class _Walker:
    """One recursive pass: canonical dump + function blocks + imports."""

    __slots__ = ("module_name", "is_package", "blocks", "imports", "seen", "lines")

    def __init__(
        self, module_name: str | None, is_package: bool, lines: list[str] | None = None
    ) -> None:
        self.module_name = module_name
        self.is_package = is_package
        self.blocks: list[Block] = []
        self.imports: dict[str, None] = {}
        self.seen: dict[str, int] = {}
        # The source's lines as the parser numbers them, for `_BODY_MEMO`; None: no memo.
        self.lines = lines

    # -- imports -----------------------------------------------------------

    def _add_module(self, dotted: str) -> None:
        """Record ``dotted`` and every parent package (importing a.b.c runs a and a.b)."""
        imports = self.imports
        if dotted in imports:
            return
        imports[dotted] = None
        pos = dotted.find(".")
        while pos != -1:
            parent = dotted[:pos]
            if parent not in imports:
                imports[parent] = None
            pos = dotted.find(".", pos + 1)

    def _resolve_relative(self, level: int, module: str | None) -> str | None:
        if self.module_name is None:
            return None
        parts = self.module_name.split(".")
        if not self.is_package:
            parts.pop()
        drop = level - 1
        if drop >= len(parts):
            return None  # beyond the top-level package
        if drop:
            del parts[-drop:]
        if module:
            parts.append(module)
        return ".".join(parts)

    def _import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add_module(alias.name)

    def _import_from(self, node: ast.ImportFrom) -> None:
        base = self._resolve_relative(node.level, node.module) if node.level else node.module
        if not base:
            return
        self._add_module(base)
        imports = self.imports
        for alias in node.names:
            if alias.name != "*":
                imports.setdefault(f"{base}.{alias.name}", None)

    def _call(self, node: ast.Call) -> None:
        func = node.func
        if type(func) is ast.Name:
            fname = func.id
        elif type(func) is ast.Attribute and func.attr == "import_module":
            value = func.value
            if type(value) is not ast.Name or value.id != "importlib":
                return
            fname = "import_module"
        else:
            return
        if fname not in _DYNAMIC_IMPORT_FUNCS:
            return
        arg: ast.expr | None = node.args[0] if node.args else None
        if arg is None:
            for kw in node.keywords:
                if kw.arg == "name":
                    arg = kw.value
                    break
        if type(arg) is ast.Constant and isinstance(arg.value, str):
            target = arg.value
            if target and not target.startswith("."):
                self._add_module(target)

    # -- dump --------------------------------------------------------------

    def dump(self, node: ast.AST, out: list[str], scope: str | None) -> None:
        """Append a canonical dump of ``node`` to ``out``.

        ``scope`` is the qualified-name prefix while only module/class scopes
        enclose ``node`` (``""`` at module level, ``"A.B."`` in nested classes)
        and None inside a function.
        """
        cls = type(node)
        if cls in _SPECIAL_TYPES:
            if cls in _FUNCTION_TYPES:
                if scope is not None:
                    self._function_block(node, out, scope)  # type: ignore[arg-type]
                    return
            elif cls is ast.ClassDef:
                if scope is not None:
                    scope = f"{scope}{node.name}."  # type: ignore[attr-defined]
            elif cls is ast.Call:
                self._call(node)  # type: ignore[arg-type]
            elif cls is ast.Import:
                self._import(node)  # type: ignore[arg-type]
            else:
                self._import_from(node)  # type: ignore[arg-type]
        append = out.append
        dump = self.dump
        append(cls.__name__)
        append("(")
        for name in cls._fields:
            value = getattr(node, name, None)
            if type(value) is list:
                append("[")
                for item in value:
                    if isinstance(item, _AST):
                        dump(item, out, scope)
                    else:
                        append(repr(item))
                    append(",")
                append("]")
            elif isinstance(value, _AST):
                dump(value, out, scope)
            else:
                append(repr(value))
            append(",")
        append(")")

    def _body_key(self, name: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> _BodyKey | None:
        """The memo key of a function's body: its name and every source line it touches."""
        lines = self.lines
        first = node.body[0]
        end, end_col = node.end_lineno, node.end_col_offset
        if lines is None or end is None or end_col is None or end > len(lines):
            return None
        # Whole lines, columns included: equal keys hold equal body text, whatever
        # else (a one-line def's header, a trailing comment) shares those lines.
        text = "\n".join(lines[first.lineno - 1 : end])
        return (name, first.col_offset, end_col, text)

    def _body_checksum(
        self, name: str, node: ast.FunctionDef | ast.AsyncFunctionDef
    ) -> tuple[int, tuple[str, ...]]:
        """Dump the body: its checksum, and the imports it names (also added to ours)."""
        outer, self.imports = self.imports, {}
        try:
            h = blake2b(digest_size=8)
            h.update(name.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
            for stmt in node.body:
                parts: list[str] = []
                self.dump(stmt, parts, None)
                h.update("".join(parts).encode("utf-8", "surrogatepass"))
                h.update(b"\n")
            own = tuple(self.imports)
        finally:
            self.imports = outer
        # Every name in `imports` comes with its parent packages, so adding the
        # body's own names in their order gives what adding them one by one would.
        for dotted in own:
            outer.setdefault(dotted, None)
        return _digest_to_int(h.digest()), own

    def _function_block(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef, out: list[str], scope: str
    ) -> None:
        qualname = scope + node.name
        count = self.seen.get(qualname, 0) + 1
        self.seen[qualname] = count
        name = qualname if count == 1 else f"{qualname}#{count}"

        key = self._body_key(name, node)
        known = _BODY_MEMO.get(key) if key is not None else None
        if known is None:
            checksum, imports = self._body_checksum(name, node)
            if key is not None:
                _BODY_MEMO.put(key, (checksum, imports))
        else:
            checksum, imports = known
            for dotted in imports:
                self.imports.setdefault(dotted, None)
        end = node.end_lineno
        self.blocks.append(
            Block(
                name=name,
                start=node.body[0].lineno,
                end=end if end is not None else node.lineno,
                checksum=checksum,
            )
        )

        # Module dump: the node without its body (decorators, signature, defaults stay).
        cls = type(node)
        append = out.append
        append(cls.__name__)
        append("(")
        for fname in cls._fields:
            if fname == "body":
                append("[]")
            else:
                value = getattr(node, fname, None)
                if type(value) is list:
                    append("[")
                    for item in value:
                        if isinstance(item, _AST):
                            self.dump(item, out, None)
                        else:
                            append(repr(item))
                        append(",")
                    append("]")
                elif isinstance(value, _AST):
                    self.dump(value, out, None)
                else:
                    append(repr(value))
            append(",")
        append(")")


def _count_lines(source: str | bytes) -> int:
    if isinstance(source, bytes):
        n = source.count(b"\n") + source.count(b"\r") - source.count(b"\r\n")
        if source and not source.endswith((b"\n", b"\r")):
            n += 1
    else:
        n = source.count("\n") + source.count("\r") - source.count("\r\n")
        if source and not source.endswith(("\n", "\r")):
            n += 1
    return n


def parser_lines(source: str | bytes) -> list[str] | None:
    """`source`'s lines numbered as the parser numbers them; None if it cannot tell."""
    try:
        if isinstance(source, bytes):
            from importlib.util import decode_source  # coding cookie, BOM: as the parser

            text = decode_source(source)
        else:
            text = io.IncrementalNewlineDecoder(None, translate=True).decode(source, final=True)
    except (SyntaxError, UnicodeError, LookupError, ValueError):
        return None
    # The parser ends a line at \n, \r\n and \r only (now all \n), unlike str.splitlines.
    return text.split("\n")


def _walk(
    tree: ast.Module, module_name: str | None, is_package: bool, lines: list[str] | None
) -> tuple[_Walker, str]:
    walker = _Walker(module_name, is_package, lines)
    out: list[str] = []
    walker.dump(tree, out, "")
    return walker, "".join(out)


def parse_python(
    source: str | bytes, module_name: str | None = None, is_package: bool = False
) -> FileBlocks:
    """Parse Python ``source`` into its blocks and imports.

    ``bytes`` are decoded like the interpreter does (coding cookie, BOM).
    ``module_name`` is the file's dotted module name, used to resolve relative
    imports (skipped when None); ``is_package`` means the file is the package's
    ``__init__``. Raises :class:`SyntaxError` for any unparsable source
    (including null bytes and undecodable bytes).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        raise
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, bad encoding, too deep
        raise SyntaxError(f"cannot parse source: {exc}") from exc

    lines = parser_lines(source)
    try:
        walker, module_dump = _walk(tree, module_name, is_package, lines)
    except RecursionError:
        old_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old_limit, _DEEP_RECURSION_LIMIT))
        try:
            walker, module_dump = _walk(tree, module_name, is_package, lines)
        except RecursionError as exc:
            raise SyntaxError(f"source too deeply nested: {exc}") from exc
        finally:
            sys.setrecursionlimit(old_limit)

    last_line = _count_lines(source)
    if tree.body:
        last_stmt_end = tree.body[-1].end_lineno
        if last_stmt_end is not None and last_stmt_end > last_line:
            last_line = last_stmt_end
    h = blake2b(digest_size=8)
    h.update(MODULE_BLOCK_NAME.encode())
    h.update(b"\0")
    h.update(module_dump.encode("utf-8", "surrogatepass"))
    module_block = Block(
        name=MODULE_BLOCK_NAME,
        start=1,
        end=max(1, last_line),
        checksum=_digest_to_int(h.digest()),
    )
    functions = sorted(walker.blocks, key=lambda b: b.start)
    return FileBlocks(blocks=(module_block, *functions), imports=tuple(walker.imports))


@dataclass(frozen=True)
class BodyParse:
    """One function body parsed on its own (`parse_body`)."""

    checksum: int
    """What `parse_python` gives the function's block."""
    imports: tuple[str, ...]
    """The imports the body names, in the order the walk meets them."""
    first: int
    """Index in the given lines of the line where the body's first statement starts."""


def parse_body(
    lines: list[str],
    name: str,
    module_name: str | None = None,
    is_package: bool = False,
) -> BodyParse | None:
    """Checksum the body of function `name` from its lines alone, without its file.

    `lines` run from the line where the body starts to the function's last
    line. They are parsed under a header of their own (``def _():`` at column
    0), which gives the statements the file gives them when the tokenizer
    meets those lines in the same state: at the start of a logical line, with
    no tab or form feed in them to compare indentation by (core.reparse checks
    both). None when the lines are not exactly one function body: they do not
    parse, dedent out of it, or end before or after its last statement.
    """
    # A plain def holds an async def's body too: the parser accepts `await`,
    # `async for` and `async with` in any function (the compiler is what refuses).
    try:
        tree = ast.parse("def _():\n" + "\n".join(lines) + "\n")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if len(tree.body) != 1 or type(tree.body[0]) is not ast.FunctionDef:
        return None
    node = tree.body[0]
    if node.end_lineno != len(lines) + 1:
        return None  # a trailing comment or blank line, or lines past the body
    walker = _Walker(module_name, is_package)
    try:
        checksum, imports = walker._body_checksum(name, node)
    except RecursionError:
        return None
    return BodyParse(checksum, imports, node.body[0].lineno - 2)
