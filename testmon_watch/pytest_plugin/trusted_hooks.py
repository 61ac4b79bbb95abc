"""Which plugins' hook implementations we know, and the first one we do not.

The no-change fast path (before conftest.py files load) and the record of test
modules that the standing filter empties (after collection, conftests loaded)
both rest on "only pytest's own code decides what is collected and deselected".
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterable
from typing import Any

import pytest

# Hooks through which a plugin can collect files our walk would not find, or take
# over the command line before us.
COLLECTION_HOOKS = (
    "pytest_make_collect_report",
    "pytest_collect_file",
    "pytest_collect_directory",
    "pytest_ignore_collect",
    "pytest_collection",
    "pytest_pycollect_makemodule",
    "pytest_cmdline_main",
)
# Hooks through which a plugin or a conftest.py can drop collected tests, or make
# none out of a module's names: a module that gave no test may give one next time.
DESELECTING_HOOKS = (
    *COLLECTION_HOOKS,
    "pytest_collection_modifyitems",
    "pytest_pycollect_makeitem",
    "pytest_generate_tests",
)
# Plugins whose implementations of those hooks we know: they only ignore more
# (hypothesis: its `.hypothesis` folder), act on options the fast path refuses,
# or, pytest's own, apply -k, -m and --deselect.
TRUSTED_PLUGIN_MODULES = (
    "_pytest.",
    "pytest.",
    "testmon_watch.",
    "xdist.",
    "_hypothesis_pytestplugin",
)


def untrusted_hook(
    config: pytest.Config, names: Iterable[str], only: Callable[[object], bool] | None = None
) -> tuple[str, str] | None:
    """(plugin name, hook) of the first implementation of `names` not ours, pytest's or inert.

    `only`: look at the plugins for which it says yes (conftest.py modules, say).
    """
    hook = config.pluginmanager.hook
    for name in names:
        caller = getattr(hook, name, None)
        if caller is None:
            continue
        for impl in caller.get_hookimpls():
            if only is not None and not only(impl.plugin):
                continue
            module = getattr(impl.plugin, "__name__", None)
            if not isinstance(module, str) or not module.startswith(TRUSTED_PLUGIN_MODULES):
                module = type(impl.plugin).__module__
            if not module.startswith(TRUSTED_PLUGIN_MODULES) and not _inert_function(impl.function):
                return impl.plugin_name, name
    return None


def inert_hooks(text: str) -> dict[str, int]:
    """Hook name -> how many top-level definitions in this module source are inert."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    found: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and is_inert(node):
            found[node.name] = found.get(node.name, 0) + 1
    return found


def is_inert(node: ast.FunctionDef) -> bool:
    """A hook implementation that cannot change what is collected or run.

    A plain function (no decorator, so no wrapper; not a generator or
    coroutine) that never returns a value and never mentions its parameters:
    it cannot see the session, config or collector it is given, and its `None`
    lets pytest's own implementation decide. packaging's `pytest_collection()`,
    which only turns the garbage collector off, is one.
    """
    if node.decorator_list:
        return False
    args = node.args
    params = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    for inner in (n for statement in node.body for n in ast.walk(statement)):
        if isinstance(inner, (ast.Yield, ast.YieldFrom, ast.Await)):
            return False
        if isinstance(inner, ast.Return) and not _is_none(inner.value):
            return False
        if isinstance(inner, ast.Name) and inner.id in params:
            return False
    return True


def _is_none(value: ast.expr | None) -> bool:
    return value is None or (isinstance(value, ast.Constant) and value.value is None)


def _inert_function(function: Any) -> bool:
    """`is_inert` for a live hook implementation, read from its source."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
        node = ast.parse(source).body[0]
    except (OSError, TypeError, SyntaxError, IndexError):
        return False
    return isinstance(node, ast.FunctionDef) and is_inert(node)
