"""Start testmon-watch recording in a child interpreter, then run the real sitecustomize.

This folder is put on PYTHONPATH only for processes started while a test runs
under `pytest --testmon`; nothing here runs anywhere else.
"""

import importlib.machinery
import importlib.util
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))

try:
    from testmon_watch.measure.children import start_child_recording

    start_child_recording()
except Exception:  # noqa: BLE001 - another interpreter or a broken install: run unrecorded
    pass

# Chain to the sitecustomize this one shadows (a distribution's or a virtualenv's).
# Only then is our entry in sys.modules replaced: importlib looks it up after this
# file has run, and a missing entry makes `site` print an error.
_path = [p for p in sys.path if os.path.abspath(p or ".") != _here]
_spec = importlib.machinery.PathFinder.find_spec("sitecustomize", _path)
if _spec is not None and _spec.loader is not None:
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["sitecustomize"] = _module
    _spec.loader.exec_module(_module)
