"""Why the no-change fast path was not taken: the reasons as values, and the line that says so.

The fast path decides before conftest.py files load, where nothing it prints
reaches the user (pytest's capture has started). So it stashes its verdict on
the config as a value, a `Why` and its parameters; `--testmon-explain` turns it
into one line where the user sees it: the fast path's own output when it was
taken, the terminal summary when the normal path ran. Nothing parses the line
back.

Imported by the plugin module in every pytest run: it loads nothing beyond
pytest until a line is asked for.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from testmon_watch.core.reasons import ChangedFile, EnvironmentChange

PREFIX = "testmon-watch: fast path"
TAKEN_LINE = f"{PREFIX} taken: nothing changed since the last run (no conftest.py imported)"
DEBUG_ENV = "TESTMON_WATCH_DEBUG_FAST_PATH"  # set: say on stderr why the fast path was not taken


class Why(Enum):
    """Each reason the normal path decides; its parameters are `NotTaken`'s fields."""

    # The run itself
    NOT_CONSIDERED = "not_considered"
    PLUGINS_GIVEN = "plugins_given"
    WARM_WORKER = "warm_worker"
    XDIST = "xdist"
    XDIST_WORKER = "xdist_worker"
    OTHER_TRACER = "other_tracer"
    NOT_ASKED = "not_asked"
    UNKNOWN_ARGUMENTS = "unknown_arguments"  # subject: the arguments
    OPTION = "option"  # subject: the option as typed (--testmon-verify)
    PLUGIN_OPTION = "plugin_option"  # subject: NAME of -p NAME
    NODE_ID = "node_id"  # subject: the argument
    NO_SUCH_PATH = "no_such_path"  # subject: the argument
    PLUGIN_HOOK = "plugin_hook"  # subject: the plugin; detail: the hook
    # The data file
    NO_DATA = "no_data"  # subject: the data file
    BASELINE = "baseline"  # subject: the baseline data file, as given
    ENVIRONMENT_UNKNOWN = "environment_unknown"  # subject: the --testmon-env name
    ENVIRONMENT_CHANGED = "environment_changed"  # environment
    NONE_RECORDED = "none_recorded"
    TESTS_DUE = "tests_due"  # count
    TEST_WITHOUT_FILE = "test_without_file"
    CUSTOM_COLLECTOR = "custom_collector"  # subject: a test file no pattern matches
    # The collection scope
    OUTSIDE_ROOT = "outside_root"  # subject: the path
    NEW_TEST_FILE = "new_test_file"  # subject: the file
    TOO_MANY_DIRECTORIES = "too_many_directories"  # count: the limit
    NEW_CONFTEST = "new_conftest"  # subject: the file
    CONFTEST_MAY_COLLECT = "conftest_may_collect"  # subject: the file; detail: what it names
    # Installed packages and files
    UNUSUAL_METADATA = "unusual_metadata"  # detail: what the quick reader met
    METADATA_DISAGREES = "metadata_disagrees"  # subject: the directory; detail: "NAME VERSION"
    FILES_CHANGED = "files_changed"  # files
    ERROR = "error"  # detail: the exception


@dataclass(frozen=True)
class NotTaken:
    """The first reason the fast path found for leaving the run to the normal path."""

    why: Why
    subject: str = ""  # the path, option, argument or plugin it is about, as the user knows it
    detail: str = ""  # a second parameter (see `Why`)
    count: int = 0
    files: tuple[ChangedFile, ...] = ()
    environment: EnvironmentChange | None = None


NOT_TAKEN_KEY = pytest.StashKey[NotTaken]()

# What each reason reads like after "fast path not taken: ".
_WORDS: dict[Why, str] = {
    Why.NOT_CONSIDERED: "not considered for this run",
    Why.PLUGINS_GIVEN: "plugins were passed to pytest.main()",
    Why.WARM_WORKER: "the warm worker runs this session",
    Why.XDIST: "xdist runs the tests (-n/--dist)",
    Why.XDIST_WORKER: "this is an xdist worker",
    Why.OTHER_TRACER: "another tracer is active (pytest-cov or a debugger)",
    Why.NOT_ASKED: "neither --testmon nor the ini option testmon is set",
    Why.UNKNOWN_ARGUMENTS: "arguments unknown before conftest.py files load ({subject})",
    Why.OPTION: "option {subject} may change what runs",
    Why.PLUGIN_OPTION: "-p {subject} loads a plugin",
    Why.NODE_ID: "node id {subject} given",
    Why.NO_SUCH_PATH: "{subject} does not exist",
    Why.PLUGIN_HOOK: "plugin {subject} implements {detail}",
    Why.NO_DATA: "no data file yet ({subject})",
    Why.BASELINE: "a baseline data file is given ({subject}): the normal path imports it",
    Why.ENVIRONMENT_UNKNOWN: "nothing recorded for environment {subject!r}",
    Why.NONE_RECORDED: "no tests recorded yet",
    Why.TEST_WITHOUT_FILE: "a recorded test has no file",
    Why.CUSTOM_COLLECTOR: "tests in {subject} come from a custom collector",
    Why.OUTSIDE_ROOT: "{subject} is outside the rootdir",
    Why.NEW_TEST_FILE: "new test file {subject}",
    Why.TOO_MANY_DIRECTORIES: "more than {count} directories to look through",
    Why.NEW_CONFTEST: "new conftest {subject}",
    Why.CONFTEST_MAY_COLLECT: "{subject} mentions {detail} (may change collection)",
    Why.UNUSUAL_METADATA: "package metadata the quick reader does not mirror ({detail})",
    Why.METADATA_DISAGREES: "{subject} holds package metadata ({detail}) that is not installed",
    Why.ERROR: "error while deciding ({detail})",
}


def describe_not_taken(reason: NotTaken) -> str:
    """'files changed (src/pkg/a.py (add))', 'new test file tests/test_b.py', ..."""
    from testmon_watch.wording import describe_changes, describe_environment

    if reason.why is Why.FILES_CHANGED:
        return f"files changed ({describe_changes(reason.files)})"
    if reason.why is Why.ENVIRONMENT_CHANGED and reason.environment is not None:
        return f"environment changed: {describe_environment(reason.environment)}"
    if reason.why is Why.TESTS_DUE:
        tests = "1 test" if reason.count == 1 else f"{reason.count} tests"
        return f"{tests} to run again (failed or unfinished last time)"
    template = _WORDS.get(reason.why, reason.why.value)
    text: str = template.format(subject=reason.subject, detail=reason.detail, count=reason.count)
    return text


def not_taken_line(config: pytest.Config) -> str:
    """The `--testmon-explain` line of a run that took the normal path."""
    reason = config.stash.get(NOT_TAKEN_KEY, None) or NotTaken(Why.NOT_CONSIDERED)
    return f"{PREFIX} not taken: {describe_not_taken(reason)}"


def not_taken(early_config: pytest.Config, reason: NotTaken) -> None:
    """Keep why the normal path runs, for `--testmon-explain` to say at the end."""
    early_config.stash[NOT_TAKEN_KEY] = reason
    if os.environ.get(DEBUG_ENV):  # pytest's capture has started: seen with -s only
        print(not_taken_line(early_config), file=sys.stderr)


def shown_path(path: Path, root: Path) -> str:
    """A path as the explain line names it: relative to the rootdir when inside."""
    if path == root:
        return "the rootdir"
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
