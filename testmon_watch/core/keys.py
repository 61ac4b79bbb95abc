"""Context keys: which execution a recorded line belongs to, one type that formats and parses.

The recorder keeps a stack of contexts while pytest runs; everything executed
is credited to the context on top. A key is stored as text (the `unit.key`
column, child-process marker files, the `TESTMON_WATCH_CONTEXT` variable):

    test:<nodeid>                     a test's setup, call and teardown
    import:<path>                     a project module's body, the first time it is imported
    collect:<path>                    collecting a test module
    fixture:<scope>:<scope node>:<baseid>::<name>[<param index>]
                                      setting up a fixture instance of a wider scope
    session                           anything else (conftest hooks, session start and end)

`str(key)` gives that text and `ContextKey.parse(text)` reads it back; nothing
else slices these strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ContextKind(str, Enum):
    TEST = "test"
    IMPORT = "import"
    COLLECT = "collect"
    FIXTURE = "fixture"
    SESSION = "session"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ContextKey:
    """One recording context. `target` is the node id, the path, or the fixture's spec."""

    kind: ContextKind
    target: str = ""

    # -- building ------------------------------------------------------------

    @classmethod
    def test(cls, nodeid: str) -> ContextKey:
        return cls(ContextKind.TEST, nodeid)

    @classmethod
    def import_of(cls, path: str) -> ContextKey:
        return cls(ContextKind.IMPORT, path)

    @classmethod
    def collection(cls, path: str) -> ContextKey:
        return cls(ContextKind.COLLECT, path)

    @classmethod
    def fixture(
        cls, scope: str, scope_node: str, baseid: str, name: str, param_index: int | None = None
    ) -> ContextKey:
        spec = f"{scope}:{scope_node}:{baseid}::{name}"
        if param_index is not None:
            spec += f"[{param_index}]"
        return cls(ContextKind.FIXTURE, spec)

    @classmethod
    def session(cls) -> ContextKey:
        return SESSION

    # -- reading -------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> ContextKey:
        """The key stored as `text`; ValueError when it is not one."""
        if text == "session":
            return SESSION
        kind, sep, target = text.partition(":")
        if not sep or not target:
            raise ValueError(f"not a context key: {text!r}")
        try:
            return cls(ContextKind(kind), target)
        except ValueError:
            raise ValueError(f"not a context key: {text!r}") from None

    def __str__(self) -> str:
        if self.kind is ContextKind.SESSION:
            return "session"
        return f"{self.kind.value}:{self.target}"

    @property
    def path(self) -> str | None:
        """The project-relative path of an import or collection key, else None."""
        if self.kind in (ContextKind.IMPORT, ContextKind.COLLECT):
            return self.target
        return None

    @property
    def fixture_scope(self) -> str | None:
        """'session', 'package', 'module' or 'class' for a fixture key, else None."""
        if self.kind is not ContextKind.FIXTURE:
            return None
        return self.target.partition(":")[0]

    @property
    def fixture_name(self) -> str | None:
        """The fixture's name, with its parameter index if any ('conn[1]'), else None."""
        if self.kind is not ContextKind.FIXTURE:
            return None
        return self.target.rsplit("::", 1)[-1]


SESSION = ContextKey(ContextKind.SESSION)
