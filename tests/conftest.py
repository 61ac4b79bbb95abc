"""Suite-wide setup: pytest runs started by our tests keep their temp dirs to themselves."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from testmon_watch.core.cache_home import CACHE_ENV

_inner_root: list[str] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    """Many tests start pytest in a subprocess (directly, or through the warm worker).

    Left alone, each of those numbers its temp dirs under /tmp/pytest-of-<user> and
    prunes all but the newest three there, the running suite's own among them. So
    this session's temp dir is created first, then every inner run gets its own root.
    """
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        factory.getbasetemp()
    root = tempfile.mkdtemp(prefix="testmon-watch-inner-")
    _inner_root.append(root)
    os.environ["PYTEST_DEBUG_TEMPROOT"] = root
    # Our caches (compiled modules, distributions' metadata) stay out of the home folder.
    os.environ.setdefault(CACHE_ENV, os.path.join(root, "cache"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    for root in _inner_root:
        shutil.rmtree(root, ignore_errors=True)
