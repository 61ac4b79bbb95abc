"""The snapshot of sys.modules that hooks iterate while tests import."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from testmon_watch.measure.loaded import loaded_modules


class MutatedOnce(dict[str, Any]):
    """sys.modules as a finalizer or thread importing mid-copy leaves it, once."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.copies = 0

    def keys(self) -> Any:
        self.copies += 1
        if self.copies == 1:
            raise RuntimeError("dictionary changed size during iteration")
        return super().keys()

    def __iter__(self) -> Iterator[str]:  # dict(self) takes the keys() path
        return iter(self.keys())


def test_a_copy_is_independent_of_later_imports() -> None:
    snapshot = loaded_modules()
    assert snapshot["sys"] is sys
    sys.modules["_testmon_watch_loaded_probe"] = sys  # as an import would
    try:
        assert "_testmon_watch_loaded_probe" not in snapshot
    finally:
        del sys.modules["_testmon_watch_loaded_probe"]


def test_a_copy_that_meets_an_import_is_taken_again(monkeypatch: pytest.MonkeyPatch) -> None:
    modules = MutatedOnce(sys.modules)
    monkeypatch.setattr(sys, "modules", modules)
    snapshot = loaded_modules()
    monkeypatch.undo()
    assert modules.copies == 2
    assert snapshot["sys"] is sys
