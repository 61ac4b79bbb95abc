"""Unit tests for testmon_watch.core.environment."""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Mapping

import pytest

from testmon_watch.core.defaults import DEFAULT_ENVIRONMENT
from testmon_watch.core.environment import (
    Environment,
    UnusualMetadata,
    _scan_packages,
    _scan_with_importlib_metadata,
    current_environment,
    environment_difference,
    installed_packages,
    python_identity,
    read_installed_packages,
)
from testmon_watch.core.reasons import EnvironmentChange, PackageChange
from testmon_watch.wording import describe_environment

PY = "CPython 3.11.7 (x86_64)"


def env(python: str = PY, **packages: str) -> Environment:
    return Environment("default", python, packages)


def describe_difference(old_python: str, old: Mapping[str, str], new: Environment) -> str | None:
    """The difference as the terminal and the app word it (None: no difference)."""
    change = environment_difference(old_python, old, new)
    return None if change is None else describe_environment(change)


def test_difference_is_typed() -> None:
    change = environment_difference(PY, {"a": "1", "b": "1"}, env(a="2", c="1"))
    assert change == EnvironmentChange(
        packages=(
            PackageChange("a", "1", "2"),
            PackageChange("b", "1", None),
            PackageChange("c", None, "1"),
        )
    )
    assert EnvironmentChange.from_json(change.to_json()) == change
    moved = environment_difference(PY, {}, env("CPython 3.12.1 (x86_64)"))
    assert moved == EnvironmentChange(python=(PY, "CPython 3.12.1 (x86_64)"))


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
    # The same string the platform module gives, so data files recorded
    # before core stopped importing platform stay valid.
    import platform

    implementation, version = platform.python_implementation(), platform.python_version()
    assert identity == f"{implementation} {version} ({platform.machine()})"


def test_current_environment_is_stable() -> None:
    first, second = current_environment(), current_environment()
    assert first.name == DEFAULT_ENVIRONMENT
    assert describe_difference(first.python, first.packages, second) is None
    assert current_environment("other").name == "other"


# -- the quick package reader ------------------------------------------------------


def test_the_quick_reader_agrees_with_importlib_metadata_on_this_interpreter() -> None:
    quick = read_installed_packages()
    assert "pytest" in quick
    assert quick == _scan_with_importlib_metadata()


def test_the_quick_reader_agrees_on_odd_but_valid_metadata(tmp_path, monkeypatch) -> None:
    egg = "Metadata-Version: 1.0\nName: Old_Style\nVersion: 2\n"
    (tmp_path / "Old_Style.egg-info").write_text(egg)
    dist = tmp_path / "new.pkg-1.0.dist-info"
    dist.mkdir()
    metadata = "Metadata-Version: 2.1\r\nName: new.pkg\r\nVersion: 1.0 \r\n\r\nbody\n"
    (dist / "METADATA").write_text(metadata)
    (tmp_path / "empty-0.dist-info").mkdir()  # no metadata at all: not a package
    monkeypatch.syspath_prepend(str(tmp_path))
    quick = read_installed_packages()
    assert quick == _scan_with_importlib_metadata()
    assert quick["old-style"] == "2"
    assert quick["new-pkg"] == "1.0 "


def test_folded_headers_fall_back_to_importlib_metadata(tmp_path, monkeypatch) -> None:
    dist = tmp_path / "odd-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: odd\nVersion: 1.0\n  .post1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UnusualMetadata):
        read_installed_packages()
    packages = _scan_packages()
    assert packages == _scan_with_importlib_metadata()
    assert "odd" in packages


def test_a_zip_on_sys_path_falls_back_to_importlib_metadata(tmp_path, monkeypatch) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        metadata = "Metadata-Version: 2.1\nName: zipped\nVersion: 3.1\n"
        zf.writestr("zipped-3.1.dist-info/METADATA", metadata)
    monkeypatch.syspath_prepend(str(archive))
    with pytest.raises(UnusualMetadata):
        read_installed_packages()
    assert _scan_packages()["zipped"] == "3.1"


def test_a_difference_names_the_first_packages_and_counts_the_rest() -> None:
    """Stored with every pending test: a new virtualenv's dozens of changes must not be."""
    old = dict.fromkeys("abcde", "1")
    change = environment_difference(PY, old, env(**dict.fromkeys("abcde", "2")))
    assert change is not None
    assert [p.name for p in change.packages] == ["a", "b", "c"] and change.more == 2
    assert EnvironmentChange.from_json(change.to_json()) == change
    assert describe_environment(change) == "a 1 -> 2, b 1 -> 2, c 1 -> 2 and 2 more"
