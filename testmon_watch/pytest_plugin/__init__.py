"""The `pytest --testmon` plugin: options, selection at collection, recording hooks."""

import sys


def _skip_assertion_rewriting() -> None:
    """Have pytest import the rest of this package from its bytecode, not rewrite it.

    pytest marks every module of a distribution that provides a plugin for
    assertion rewriting, meant for plugins whose asserts users read. None of
    ours are. A rewritten module is parsed and compiled from source, and where
    bytecode is not written (PYTHONDONTWRITEBYTECODE, as in many containers)
    that happens on every run: tens of milliseconds of every `pytest --testmon`.
    This package's __init__ (this file) is imported first, so the modules below
    it load normally. pytest's private state: if it moved, nothing changes.
    """
    for finder in sys.meta_path:
        if type(finder).__name__ != "AssertionRewritingHook":
            continue
        marked = getattr(finder, "_must_rewrite", None)
        cache = getattr(finder, "_marked_for_rewrite_cache", None)
        if not isinstance(marked, set) or not isinstance(cache, dict):
            continue
        top = __name__.partition(".")[0]
        if top in marked:
            marked.discard(top)
            for name in [n for n in cache if n == top or n.startswith(top + ".")]:
                del cache[name]


_skip_assertion_rewriting()
