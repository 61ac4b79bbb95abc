"""What `pytest --testmon` selected in this process, for the warm worker to read, typed.

The warm worker's child runs pytest with our plugin and streams the run to the
app; it needs to know why each test was selected, how many were deselected,
which files changed and what the plugin had to say. `selection_of(config)`
answers that at any point of the session (the selection is complete once
`pytest_collection_modifyitems` has run), without reaching into the plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import pytest

from testmon_watch.core.reasons import ChangedFile, Reason
from testmon_watch.pytest_plugin.session_state import STATE_KEY


@dataclass(frozen=True)
class SelectionView:
    """A snapshot of the session's selection."""

    selected: Mapping[str, tuple[Reason, ...]]  # nodeid -> why it runs (collected tests only)
    deselected: int  # deselected tests, counting those of test files not even collected
    changed: tuple[ChangedFile, ...]  # files changed since the last run, with their blocks
    messages: tuple[str, ...]  # what the plugin reports (data file moved aside, environment)
    # Tests the data file knew that no longer exist; they have left it (complete
    # after collection).
    removed: tuple[str, ...] = ()
    # Every test the data file knows for this environment, the removed ones gone:
    # with what collection found, the tests that exist.
    known: frozenset[str] = frozenset()


def selection_of(config: pytest.Config) -> SelectionView | None:
    """The selection of this pytest session as it stands now; None when --testmon is off."""
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return None
    plan = state.plan
    return SelectionView(
        selected=MappingProxyType({n: tuple(r) for n, r in state.selected.items()}),
        deselected=state.deselected_count,
        changed=tuple(plan.changes.summary()) if plan is not None else (),
        messages=tuple(state.messages),
        removed=tuple(state.removed),
        known=frozenset(plan.known) if plan is not None else frozenset(),
    )
