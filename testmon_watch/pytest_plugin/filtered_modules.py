"""Test modules that pytest's own filters empty, remembered for the no-change fast path.

A standing filter in the ini's `addopts` (packaging's `-m "not property"`)
deselects every test of some modules on every run, so those tests are never
recorded and, to the fast path, their files look new every time. After
collection, a module new to the data file whose every test pytest's -k, -m or
--deselect removes (recomputed here, not inferred from what is left), or that
holds no test, is saved with the filter in force (`filtered_file`); the fast
path passes over it while that filter stands and nothing has changed.

Not recorded when a conftest.py implements a hook that could drop tests or add
the marks a filter reads: what it does may depend on anything, an environment
variable say. Installed plugins are part of the environment, which the fast
path compares.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from testmon_watch.pytest_plugin.trusted_hooks import DESELECTING_HOOKS, untrusted_hook


def filter_in_force(keyword: object, markexpr: object, deselect: object) -> str:
    """The filter as the `filtered_file.filter` column stores it (JSON).

    pytest's -k and -m expressions and --deselect prefixes, as parsed from the
    command line with the ini's addopts: the plugin writes it after collection,
    the fast path compares it before conftest.py files load.
    """
    prefixes = sorted(str(p) for p in deselect or ()) if isinstance(deselect, list) else []
    return json.dumps(
        {"deselect": prefixes, "keyword": str(keyword or ""), "markexpr": str(markexpr or "")},
        sort_keys=True,
    )


def config_filter(config: pytest.Config) -> str:
    option = config.getoption
    return filter_in_force(option("keyword"), option("markexpr"), option("deselect"))


def conftest_may_deselect(config: pytest.Config) -> bool:
    """Does a conftest.py implement, other than inertly, a hook that can drop tests?"""
    found = untrusted_hook(config, DESELECTING_HOOKS, only=_is_conftest)
    return found is not None


def _is_conftest(plugin: object) -> bool:
    return Path(str(getattr(plugin, "__file__", "") or "")).name == "conftest.py"


def all_deselected_by_pytest(items: Iterable[pytest.Item], config: pytest.Config) -> bool:
    """Would pytest's own -k, -m and --deselect remove every one of these items?

    Recomputed as `_pytest.mark` and `_pytest.main` do; pytest's private
    matchers, so any surprise answers no (nothing is recorded, the fast path
    stands aside as before).
    """
    try:
        from _pytest.mark import KeywordMatcher, MarkMatcher
        from _pytest.mark.expression import Expression

        option = config.getoption
        prefixes = tuple(str(p) for p in option("deselect") or ())
        keyword = str(option("keyword") or "").lstrip()
        markexpr = str(option("markexpr") or "")
        by_keyword = Expression.compile(keyword) if keyword else None
        by_mark = Expression.compile(markexpr) if markexpr else None
        for item in items:
            if prefixes and item.nodeid.startswith(prefixes):
                continue
            if by_keyword is not None and not by_keyword.evaluate(KeywordMatcher.from_item(item)):
                continue
            if by_mark is not None and not by_mark.evaluate(_mark_matcher(MarkMatcher, item)):
                continue
            return False
    except Exception:  # noqa: BLE001 - another pytest's internals: do not record
        return False
    return True


def _mark_matcher(matcher: type, item: pytest.Item) -> Any:
    from_markers = getattr(matcher, "from_markers", None)  # pytest >= 8.1
    if from_markers is not None:
        return from_markers(item.iter_markers())
    return getattr(matcher, "from_item")(item)  # noqa: B009 - pytest 8.0's name
