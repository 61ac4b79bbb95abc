"""Why a test runs: a kind and its parameters, stored and sent as JSON, never as English.

A `Reason` is built by selection (a changed block, an import-time change, a
failure last time, ...), stored with a pending test in `.testmondata`, carried
to the front ends by the worker protocol, and turned into words only where a
person reads it (`testmon_watch.wording`). Its JSON form (`to_json` and
`from_json`) is the one format for both the database and the wire.

`ChangedFile` summarises one changed file of a run for the same readers, and
`EnvironmentChange` what differs between the recorded and the current
interpreter and packages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from testmon_watch.core.keys import ContextKey
from testmon_watch.core.outcomes import Outcome


class ReasonKind(str, Enum):
    CHANGED = "changed"  # code or data it executed or read changed (directly or via a unit)
    IMPORTS = "imports"  # a module its code imports changed what it does at import time
    FAILED = "failed"  # it failed (or had an error) last time
    NEW = "new"  # nothing is recorded for it yet
    ENVIRONMENT = "environment"  # the interpreter or installed packages changed
    INTERRUPTED = "interrupted"  # what was recorded for it is incomplete
    FULL_RUN = "full_run"  # the user asked for every test
    REQUESTED = "requested"  # the user asked for this test by name

    def __str__(self) -> str:
        return self.value


class FileEvent(str, Enum):
    """What happened to the file a CHANGED or IMPORTS reason names."""

    EDITED = "edited"  # its content changed; `blocks` says where, when known
    CREATED = "created"  # it did not exist when the test was recorded
    DELETED = "deleted"
    UNPARSABLE = "unparsable"  # it no longer parses; `error` has the parser's message
    CHANGED_DURING_RUN = "changed_during_run"  # edited while the test was being recorded

    def __str__(self) -> str:
        return self.value


class Interruption(str, Enum):
    """Why an INTERRUPTED test's recording cannot be trusted."""

    RUN = "run"  # its last run did not finish (Ctrl-C, kill)
    CHILD_LOST = "child_lost"  # a child process it started never reported what it ran

    def __str__(self) -> str:
        return self.value


# Reasons that say nothing about a change to the code: a test whose outcome flips
# under only these is a flaky suspect.
CHANGE_FREE_KINDS = frozenset(
    {ReasonKind.NEW, ReasonKind.FAILED, ReasonKind.FULL_RUN, ReasonKind.REQUESTED}
)


PACKAGES_KEPT = 3  # package changes an EnvironmentChange names; the rest it counts


@dataclass(frozen=True)
class PackageChange:
    """One installed distribution that differs: added (no `before`), removed (no `after`)."""

    name: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class EnvironmentChange:
    """The recorded environment against the current one: the interpreter, else packages.

    It is stored with every pending test, so it keeps the first `PACKAGES_KEPT`
    package changes (by name) and counts the rest: a new virtualenv differs in
    dozens, and 20,000 tests must not each carry them all.
    """

    python: tuple[str, str] | None = None  # (recorded, current) when the interpreter differs
    packages: tuple[PackageChange, ...] = ()  # at most PACKAGES_KEPT
    more: int = 0  # package changes beyond those

    @classmethod
    def of_packages(cls, changes: list[PackageChange]) -> EnvironmentChange:
        kept = tuple(changes[:PACKAGES_KEPT])
        return cls(packages=kept, more=len(changes) - len(kept))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.python is not None:
            data["python"] = list(self.python)
        if self.packages:
            data["packages"] = [[p.name, p.before, p.after] for p in self.packages]
        if self.more:
            data["more"] = self.more
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EnvironmentChange:
        python = data.get("python")
        return cls(
            python=(str(python[0]), str(python[1])) if python else None,
            packages=tuple(
                PackageChange(str(n), _opt_str(b), _opt_str(a))
                for n, b, a in data.get("packages", ())
            ),
            more=int(data.get("more", 0)),
        )


@dataclass(frozen=True)
class Reason:
    """Why one test runs. Which fields matter depends on `kind` (see each field)."""

    kind: ReasonKind
    file: str = ""  # CHANGED, IMPORTS: the project-relative path of the changed file
    event: FileEvent = FileEvent.EDITED  # CHANGED, IMPORTS: what happened to `file`
    blocks: tuple[str, ...] = ()  # EDITED: the changed blocks, sorted ('<module>': top level)
    error: str = ""  # UNPARSABLE: the parser's one-line message
    via: ContextKey | None = None  # CHANGED: the shared unit (fixture, import...) it came through
    outcome: Outcome | None = None  # FAILED: failed or error
    environment: EnvironmentChange = field(default_factory=EnvironmentChange)  # ENVIRONMENT
    interruption: Interruption = Interruption.RUN  # INTERRUPTED

    # -- shorthands ----------------------------------------------------------

    @classmethod
    def new(cls) -> Reason:
        return cls(ReasonKind.NEW)

    @classmethod
    def failed(cls, outcome: Outcome | None = None) -> Reason:
        return cls(ReasonKind.FAILED, outcome=outcome)

    @classmethod
    def interrupted(cls, why: Interruption = Interruption.RUN) -> Reason:
        return cls(ReasonKind.INTERRUPTED, interruption=why)

    def through(self, unit: ContextKey) -> Reason:
        """This reason, reached through a shared unit."""
        return replace(self, via=unit)

    @property
    def change_free(self) -> bool:
        """True when the reason names no change to the code (new, failed, asked for)."""
        return self.kind in CHANGE_FREE_KINDS

    # -- JSON: the stored and sent form --------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON object with `kind` and only the fields that differ from their defaults."""
        data: dict[str, Any] = {"kind": self.kind.value}
        if self.file:
            data["file"] = self.file
        if self.event is not FileEvent.EDITED:
            data["event"] = self.event.value
        if self.blocks:
            data["blocks"] = list(self.blocks)
        if self.error:
            data["error"] = self.error
        if self.via is not None:
            data["via"] = str(self.via)
        if self.outcome is not None:
            data["outcome"] = self.outcome.value
        environment = self.environment.to_json()
        if environment:
            data["environment"] = environment
        if self.interruption is not Interruption.RUN:
            data["interruption"] = self.interruption.value
        return data

    @classmethod
    def from_json(cls, data: Any) -> Reason:
        """The reason of a JSON object; ValueError when it is not one.

        Also reads the dicts of schema 3 files written before reasons were typed
        (`{"kind": "changed", "detail": "deleted", "blocks": "f, g"}`), so a
        pending mark stored by an older version still selects its test.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("kind"), str):
            raise ValueError(f"not a reason: {data!r}")
        if "detail" in data or isinstance(data.get("blocks"), str):
            return _from_untyped(data)
        try:
            via = data.get("via")
            outcome = data.get("outcome")
            return cls(
                kind=ReasonKind(data["kind"]),
                file=str(data.get("file", "")),
                event=FileEvent(data.get("event", FileEvent.EDITED.value)),
                blocks=tuple(str(b) for b in data.get("blocks", ())),
                error=str(data.get("error", "")),
                via=ContextKey.parse(via) if via is not None else None,
                outcome=Outcome(outcome) if outcome is not None else None,
                environment=EnvironmentChange.from_json(data.get("environment", {})),
                interruption=Interruption(data.get("interruption", Interruption.RUN.value)),
            )
        except (TypeError, KeyError, IndexError) as exc:
            raise ValueError(f"not a reason: {data!r} ({exc})") from None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _from_untyped(data: Mapping[str, Any]) -> Reason:
    """A reason stored as the untyped dict of earlier versions (its English `via` is dropped)."""
    kind = ReasonKind(data["kind"]) if data["kind"] in _KIND_VALUES else ReasonKind.CHANGED
    detail = str(data.get("detail") or "")
    blocks_text = str(data.get("blocks") or "")
    blocks = tuple(b for b in blocks_text.removesuffix(" ...").split(", ") if b)
    file = str(data.get("file", ""))
    if kind is ReasonKind.FAILED:
        return Reason.failed(Outcome.ERROR if detail == "had an error" else Outcome.FAILED)
    if kind is ReasonKind.INTERRUPTED:
        lost = "child process" in detail
        return Reason.interrupted(Interruption.CHILD_LOST if lost else Interruption.RUN)
    if kind in (ReasonKind.CHANGED, ReasonKind.IMPORTS):
        events = {
            "deleted": FileEvent.DELETED,
            "created": FileEvent.CREATED,
            "changed during the run": FileEvent.CHANGED_DURING_RUN,
        }
        if detail in events:
            return Reason(kind, file, events[detail])
        if detail.startswith(("syntax error", "cannot read")):
            return Reason(kind, file, FileEvent.UNPARSABLE, error=detail)
        if kind is ReasonKind.IMPORTS and detail:
            blocks = tuple(b for b in detail.removesuffix(" ...").split(", ") if b)
        return Reason(kind, file, blocks=blocks)
    return Reason(kind)


_KIND_VALUES = frozenset(k.value for k in ReasonKind)


def reasons_to_json(reasons: list[Reason]) -> list[dict[str, Any]]:
    return [r.to_json() for r in reasons]


def reasons_from_json(data: Any) -> list[Reason]:
    """Reasons of a JSON list; ValueError when it is not a list of reasons."""
    if not isinstance(data, list):
        raise ValueError(f"not a list of reasons: {data!r}")
    return [Reason.from_json(item) for item in data]


@dataclass(frozen=True)
class ChangedFile:
    """One file whose content differs from its recorded state (a run's 'what changed')."""

    path: str
    blocks: tuple[str, ...] = ()  # the blocks that changed or went away (python files)
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path}
        if self.blocks:
            data["blocks"] = list(self.blocks)
        if self.deleted:
            data["deleted"] = True
        return data

    @classmethod
    def from_json(cls, data: Any) -> ChangedFile:
        if not isinstance(data, Mapping) or not isinstance(data.get("path"), str):
            raise ValueError(f"not a changed file: {data!r}")
        return cls(
            data["path"],
            tuple(str(b) for b in data.get("blocks", ())),
            bool(data.get("deleted", False)),
        )
