"""The catalogue in testmon_watch.wire lists every format module, and each has a version."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import testmon_watch.wire as wire


def test_every_module_of_the_package_is_listed_once() -> None:
    on_disk = {info.name for info in pkgutil.iter_modules([str(Path(wire.__file__).parent)])}
    listed = [f.module for f in wire.FORMATS]
    assert len(listed) == len(set(listed))
    assert set(listed) == on_disk


def test_every_format_names_its_version_and_says_what_it_carries() -> None:
    for fmt in wire.FORMATS:
        module = importlib.import_module(f"testmon_watch.wire.{fmt.module}")
        assert isinstance(module.VERSION, int) and module.VERSION >= 1, fmt.module
        assert module.__doc__ and fmt.module in wire.__doc__, fmt.module
