"""A data file recorded elsewhere (a CI artifact) as a baseline for selecting here.

The baseline's records of the run's environment are imported into the local
data file (core/merge.py), checked against the files on disk: what changed
since the baseline was recorded selects its tests, exactly as a local record
would. The baseline file itself is only ever read.

Refused, with the reason as a value (the plugin words it): a file that is not
a data file of this schema, one recorded under another interpreter, one whose
test files none exist here (recorded for another project, or from another
rootdir), the local data file itself, and one with nothing recorded for the
environment.

Importing the same baseline twice would only bring back tests the local file
has since forgotten (deleted or renamed tests): the local file keeps a stamp
of the baseline's records per environment (meta `baseline:<env>`) and skips
a baseline whose records it has already seen.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from testmon_watch.core.changes import read_state
from testmon_watch.core.db import Database, DatabaseError, FileRow
from testmon_watch.core.environment import Environment
from testmon_watch.core.merge import ImportResult, import_tests


class Refusal(Enum):
    """Why a baseline was not used; the parameters are `BaselineRefused`'s fields."""

    UNREADABLE = "unreadable"  # detail: why (missing, damaged, another tool or schema)
    SAME_FILE = "same_file"  # it is the local data file
    NO_ENVIRONMENT = "no_environment"  # detail: the environment name
    OTHER_PYTHON = "other_python"  # python: (recorded, current)
    OTHER_PROJECT = "other_project"  # count: test files it knows, none of which exist here


@dataclass(frozen=True)
class BaselineRefused:
    why: Refusal
    detail: str = ""
    count: int = 0
    python: tuple[str, str] | None = None


@dataclass(frozen=True)
class BaselineApplied:
    """The baseline was used; `result` is None when its records had all been imported before."""

    result: ImportResult | None


BaselineOutcome = BaselineApplied | BaselineRefused

STAMP_KEY = "baseline:{environment}"


def apply_baseline(
    local: Database, baseline: Path, root: Path, environment: Environment
) -> BaselineOutcome:
    """Import `baseline`'s records of `environment` into `local`, checked against the disk.

    Call after the local file states have been brought up to date and saved.
    """
    try:
        if local.path.exists() and baseline.exists() and os.path.samefile(local.path, baseline):
            return BaselineRefused(Refusal.SAME_FILE)
        source = Database.open_for_reading(baseline)
    except (DatabaseError, OSError) as exc:
        # DatabaseError names the file first; the user's own spelling of it is shown instead.
        text = str(exc)
        prefix = f"{baseline}: "
        return BaselineRefused(
            Refusal.UNREADABLE, text[len(prefix) :] if text.startswith(prefix) else text
        )
    try:
        return _apply(local, source, root, environment)
    finally:
        source.close()


def _apply(
    local: Database, source: Database, root: Path, environment: Environment
) -> BaselineOutcome:
    with source.snapshot():
        recorded = source.environment(environment.name)
        if recorded is None:
            return BaselineRefused(Refusal.NO_ENVIRONMENT, environment.name)
        if recorded.python != environment.python:
            return BaselineRefused(
                Refusal.OTHER_PYTHON, python=(recorded.python, environment.python)
            )
        stamp = json.dumps(source.records_stamp(recorded.id))
        key = STAMP_KEY.format(environment=environment.name)
        if local.meta(key) == stamp:
            return BaselineApplied(None)
        test_files = _test_files(source, recorded.id)
        if test_files and not any((root / path).exists() for path in test_files):
            return BaselineRefused(Refusal.OTHER_PROJECT, count=len(test_files))

        def state_on_disk(row: FileRow) -> FileRow:
            state, _ = read_state(root, row.path, row.kind)
            return state

        with local.transaction():
            result = import_tests(source, local, environment.name, state_on_disk)
            local.set_meta(key, stamp)
    return BaselineApplied(result)


def _test_files(source: Database, env_id: int) -> set[str]:
    """The test modules the baseline has tests in (project-relative paths)."""
    path_of = {row.id: path for path, row in source.files().items()}
    return {
        path_of[test.file_id]
        for test in source.tests(env_id)
        if test.file_id is not None and test.file_id in path_of
    }
