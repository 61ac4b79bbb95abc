"""A pytest plugin for bench/real/trace_floor.py: coverage.py's tracer in our windows only.

The least any recorder built on coverage.py's C tracer (Python < 3.12) pays:
the tracer runs while a test's setup, call and teardown run (where ours traces
too, see testmon_watch/pytest_plugin/windows.py) and nowhere else: not during
collection, not in pytest's own code between tests; and nothing is done with
what it records (no contexts, no per-test bookkeeping, nothing saved).

Loaded with ``-p floor_plugin`` and this folder on PYTHONPATH.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import coverage
import pytest

_coverage: coverage.Coverage | None = None
_tracer: Any = None


def pytest_configure(config: pytest.Config) -> None:
    global _coverage, _tracer
    _coverage = coverage.Coverage(source=[str(config.rootpath)], data_file=None)
    _coverage.start()
    _tracer = sys.gettrace()  # the C tracer; set again, it reinstalls itself in C
    sys.settrace(None)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _coverage is not None:
        sys.settrace(_tracer)
        _coverage.stop()


def _window() -> Generator[None, Any, Any]:
    sys.settrace(_tracer)
    try:
        return (yield)
    finally:
        sys.settrace(None)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _window())


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _window())


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: Any) -> Generator[None, Any, Any]:
    return (yield from _window())
