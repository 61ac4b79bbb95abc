"""Shared by the tests that move data files between checkouts: git, digests, foreign files."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
from pathlib import Path

# Variables of the outer pytest that would change how the inner ones run.
INHERITED = ("PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "TESTMON_DATAFILE")
# git without the machine's configuration, with an identity to commit as.
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "ci",
    "GIT_AUTHOR_EMAIL": "ci@example.com",
    "GIT_COMMITTER_NAME": "ci",
    "GIT_COMMITTER_EMAIL": "ci@example.com",
}


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in INHERITED}
    return env | GIT_ENV


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        env=clean_env(),
        check=True,
        capture_output=True,
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_pytest_testmon_file(target: Path) -> None:
    """A data file as pytest-testmon writes it (its two telltale tables)."""
    conn = sqlite3.connect(target)
    with conn:
        conn.execute("CREATE TABLE metadata (dataid TEXT PRIMARY KEY, data TEXT)")
        conn.execute("CREATE TABLE test_execution (id INTEGER PRIMARY KEY, test_name TEXT)")
    conn.close()
