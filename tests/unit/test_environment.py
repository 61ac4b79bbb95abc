"""Unit tests for testmon_watch.core.environment."""

from __future__ import annotations

import sys

from testmon_watch.core.environment import (
    DEFAULT_ENVIRONMENT,
    Environment,
    current_environment,
    describe_difference,
    installed_packages,
    python_identity,
)

PY = "CPython 3.11.7 (x86_64)"


def env(python: str = PY, **packages: str) -> Environment:
    return Environment("default", python, packages)


def test_no_difference_is_none() -> None:
    assert (
        describe_difference(PY, {"pytest": "8.0", "attrs": "23.1"}, env(pytest="8.0", attrs="23.1"))
        is None
    )
    assert describe_difference(PY, {}, env()) is None


def test_python_change_is_named_first() -> None:
    text = describe_difference(PY, {"pytest": "8.0"}, env("CPython 3.12.1 (x86_64)", pytest="9.0"))
    assert text == "Python CPython 3.11.7 (x86_64) -> CPython 3.12.1 (x86_64)"


def test_package_added() -> None:
    assert describe_difference(PY, {}, env(numpy="2.0")) == "numpy 2.0 installed"


def test_package_removed() -> None:
    assert describe_difference(PY, {"numpy": "2.0"}, env()) == "numpy 2.0 removed"


def test_package_upgraded() -> None:
    assert describe_difference(PY, {"numpy": "1.26"}, env(numpy="2.0")) == "numpy 1.26 -> 2.0"


def test_several_changes_sorted_and_truncated() -> None:
    old = {"a": "1", "b": "1", "c": "1", "d": "1", "e": "1"}
    new = env(a="2", b="2", c="2", d="2", e="1")
    assert describe_difference(PY, old, new) == "a 1 -> 2, b 1 -> 2, c 1 -> 2 and 1 more"
    old2 = {"z": "1", "m": "1"}
    assert (
        describe_difference(PY, old2, env(m="2", a="0")) == "a 0 installed, m 1 -> 2, z 1 removed"
    )


def test_installed_packages_contains_pytest() -> None:
    import pytest

    packages = installed_packages()
    assert packages["pytest"] == pytest.__version__
    assert all(name == name.lower() and "_" not in name and "." not in name for name in packages)


def test_python_identity_names_this_interpreter() -> None:
    identity = python_identity()
    assert ".".join(map(str, sys.version_info[:3])) in identity


def test_current_environment_is_stable() -> None:
    first, second = current_environment(), current_environment()
    assert first.name == DEFAULT_ENVIRONMENT
    assert describe_difference(first.python, first.packages, second) is None
    assert current_environment("other").name == "other"
