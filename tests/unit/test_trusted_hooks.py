"""Which conftest.py hook implementations cannot change what pytest collects."""

from __future__ import annotations

import textwrap

import pytest

from testmon_watch.pytest_plugin.trusted_hooks import inert_hooks


def inert(source: str) -> dict[str, int]:
    return inert_hooks(textwrap.dedent(source))


def test_a_hook_that_only_touches_globals_is_inert() -> None:
    source = """
        import gc

        def pytest_collection() -> None:
            gc.disable()

        def pytest_ignore_collect(collection_path, config):
            return None
    """
    assert inert(source) == {"pytest_collection": 1, "pytest_ignore_collect": 1}


@pytest.mark.parametrize(
    "body",
    [
        "def pytest_collection(session):\n    session.items.clear()\n",
        "def pytest_ignore_collect(collection_path):\n    return 'x' in str(collection_path)\n",
        "def pytest_collection():\n    return True\n",
        "def pytest_collection():\n    if X:\n        return 1\n",
        "def pytest_collection():\n    yield\n",
        "async def pytest_collection():\n    pass\n",
        "@hookimpl(tryfirst=True)\ndef pytest_collection():\n    pass\n",
        "def pytest_collection(*args):\n    print(args)\n",
        "def pytest_collection(**kw):\n    print(kw)\n",
        "def pytest_collection():\n    def inner():\n        return 1\n    inner()\n",
    ],
    ids=[
        "uses-param",
        "returns-expression",
        "returns-true",
        "returns-sometimes",
        "generator",
        "coroutine",
        "decorated",
        "varargs",
        "kwargs",
        "nested-return",
    ],
)
def test_a_hook_that_may_act_is_not(body: str) -> None:
    assert inert(body) == {}


def test_unparsable_source_has_no_inert_hook() -> None:
    assert inert("def pytest_collection(:\n") == {}
