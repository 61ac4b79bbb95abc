"""Fixtures for worker tests: a sample project in tmp_path and a started worker client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_helpers import CALC, TEST_CALC, Events, make_client, write

from testmon_watch.worker.client import WorkerClient


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    write(root, "pytest.ini", "[pytest]\n")
    write(root, "calc.py", CALC)
    write(root, "test_calc.py", TEST_CALC)
    return root


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def client(project: Path, events: Events) -> Iterator[WorkerClient]:
    worker = make_client(project, events)
    worker.start()
    yield worker
    worker.stop()
