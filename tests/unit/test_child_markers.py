"""What a child's marker files mean when the parent collects a context's children."""

from __future__ import annotations

import json
from pathlib import Path

from testmon_watch.measure.children import RUNNING, STARTING, ChildRecording, key_hash

KEY = "test:test_kids.py::test_a"


def test_only_a_child_that_was_running_and_never_reported_is_incomplete(tmp_path: Path) -> None:
    recording = ChildRecording(tmp_path, tmp_path / ".children")
    try:
        stem = key_hash(KEY)
        markers = {
            # killed between creating and writing its marker: it ran nothing
            f"{stem}-101.started": "",
            # killed while multiprocessing was still starting it: it ran nothing
            f"{stem}-102.started": STARTING,
            # ran its target and never reported: its lines are lost
            f"{stem}-103.started": RUNNING,
            f"{stem}-104.started": RUNNING,
        }
        for name, text in markers.items():
            (recording.dir / name).write_text(text)
        report = {"key": KEY, "pid": 104, "lines": {"work.py": [2, 3]}, "reads": [], "listings": []}
        (recording.dir / f"{stem}-104.json").write_text(json.dumps(report))

        data = recording.collect(KEY)

        assert (data.complete, data.incomplete) == (1, 1)
        assert data.lines == {"work.py": {2, 3}}
    finally:
        recording.cleanup()
