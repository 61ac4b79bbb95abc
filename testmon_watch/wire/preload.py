"""The preload list: what a run's child tells the next warm worker server to import at start.

Written by each run's child after pytest is done (worker/preload.py) to
`.testmondata-preload.json` beside the data file (`ProjectPaths.preload_list`),
read by the server when it starts or recycles and after each run:

    {"version": 1, "modules": ["fractions", "requests", ...],
     "conftests": ["/abs/path/conftest.py", ...],
     "rewritten": ["/abs/path/tests/test_x.py", ...],
     "compiled": ["/abs/path/src/pkg/core.py", ...]}

`modules` are top-level names of non-project modules the tests imported;
`conftests` are the conftest.py files pytest loaded, whose changes recycle the
worker (worker/fingerprint.py). `rewritten` and `compiled` are the project's
Python files the run imported, through pytest's assertion rewriting or Python's
own loader: the next standby loads their code ahead (worker/code_cache.py).
The last two came later within version 1: a list without them has none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

VERSION = 1


class PreloadError(ValueError):
    """Text that is not a preload list of this version."""


@dataclass(frozen=True)
class PreloadList:
    modules: tuple[str, ...] = ()
    conftests: tuple[str, ...] = ()
    rewritten: tuple[str, ...] = ()
    compiled: tuple[str, ...] = ()


FIELDS = ("modules", "conftests", "rewritten", "compiled")


def encode(preload: PreloadList) -> str:
    data: dict[str, object] = {"version": VERSION}
    data.update({key: list(getattr(preload, key)) for key in FIELDS})
    return json.dumps(data, indent=0)


def decode(text: str) -> PreloadList:
    """The list in `text`; PreloadError when it is not one (another version included)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PreloadError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PreloadError("not a JSON object")
    if data.get("version") != VERSION:
        raise PreloadError(f"preload list version {data.get('version')!r}, expected {VERSION}")
    lists = []
    for key in FIELDS:
        items = data.get(key, [])
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise PreloadError(f"{key} must be a list of strings")
        lists.append(tuple(items))
    return PreloadList(*lists)
