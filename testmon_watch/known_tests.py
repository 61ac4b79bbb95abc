"""Stand-in that reads the tests recorded by earlier runs, moved out of ui/coverage_model.py.

Issue #11 gives the session its own copy of this (the front-end engineer's
branch); until that branch is merged the app imports it from here. At the
merge the app's import points at the session's copy and this module goes.
"""

from __future__ import annotations

from pathlib import Path

from testmon_watch.core.db import Database, DatabaseError
from testmon_watch.core.environment import DEFAULT_ENVIRONMENT
from testmon_watch.paths import datafile_path


def load_known_tests(root: Path) -> list[tuple[str, str, float]]:
    """(nodeid, outcome, duration) of the tests recorded by earlier runs."""
    path = datafile_path(root)
    if not path.exists():
        return []
    try:
        db, _ = Database.open(path, readonly=True)
    except DatabaseError:
        return []
    try:
        env = db.environment(DEFAULT_ENVIRONMENT)
        if env is None:
            return []
        return [(t.nodeid, t.outcome, t.duration) for t in db.tests(env.id)]
    finally:
        db.close()
