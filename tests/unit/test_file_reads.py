"""File read watcher: real opens, listings and globs under a tmp project."""

from __future__ import annotations

import glob
import os
import pathlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from testmon_watch.measure.file_reads import FileReadWatcher


class Recorder:
    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.reads: list[str] = []
        self.lists: list[str] = []

    def is_project_path(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root + os.sep)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    (project / "data").mkdir(parents=True)
    (project / "data" / "config.json").write_text('{"limit": 3}')
    (project / "data" / "other.json").write_text("{}")
    (project / "mod.py").write_text("X = 1\n")
    return project


@pytest.fixture
def recorder(root: Path) -> Recorder:
    return Recorder(root)


@pytest.fixture
def watcher(recorder: Recorder) -> Iterator[FileReadWatcher]:
    watcher = FileReadWatcher(
        recorder.is_project_path, recorder.reads.append, recorder.lists.append
    )
    watcher.enable()
    try:
        yield watcher
    finally:
        watcher.disable()


def test_open_for_reading_is_reported(
    root: Path, recorder: Recorder, watcher: FileReadWatcher
) -> None:
    path = root / "data" / "config.json"
    with open(path) as handle:
        handle.read()
    with open(str(path), "rb") as handle:
        handle.read()
    assert recorder.reads == [str(path), str(path)]


def test_open_for_writing_is_not(root: Path, recorder: Recorder, watcher: FileReadWatcher) -> None:
    for mode in ("w", "a", "x", "wb"):
        target = root / "data" / f"out-{mode}.txt"
        with open(target, mode) as handle:
            handle.write("x" if "b" not in mode else b"x")
    os.close(os.open(root / "data" / "raw.txt", os.O_WRONLY | os.O_CREAT))
    assert recorder.reads == []


def test_read_write_modes_count_as_reads(
    root: Path, recorder: Recorder, watcher: FileReadWatcher
) -> None:
    path = root / "data" / "config.json"
    with open(path, "r+") as handle:
        handle.read()
    os.close(os.open(path, os.O_RDONLY))
    assert recorder.reads == [str(path), str(path)]


def test_pathlib_read_text(root: Path, recorder: Recorder, watcher: FileReadWatcher) -> None:
    path = root / "data" / "config.json"
    assert "limit" in path.read_text()
    path.read_bytes()
    assert recorder.reads == [str(path), str(path)]


def test_relative_paths_are_made_absolute(
    root: Path, recorder: Recorder, watcher: FileReadWatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(root / "data")
    with open("config.json") as handle:
        handle.read()
    os.listdir()
    assert recorder.reads == [str(root / "data" / "config.json")]
    assert recorder.lists == [str(root / "data")]


def test_listdir_scandir_and_glob(root: Path, recorder: Recorder, watcher: FileReadWatcher) -> None:
    data = root / "data"
    os.listdir(data)
    with os.scandir(str(data)) as entries:
        list(entries)
    list(data.iterdir())
    assert recorder.lists == [str(data)] * 3
    recorder.lists.clear()
    assert len(glob.glob(str(data / "*.json"))) == 2
    assert set(recorder.lists) == {str(data)}
    recorder.lists.clear()
    glob.glob("*.json", root_dir=data)
    assert set(recorder.lists) == {str(data)}
    recorder.lists.clear()
    list(pathlib.Path(root).glob("data/*.json"))
    assert str(data) in recorder.lists


def test_files_outside_the_project_are_not_reported(
    tmp_path: Path, recorder: Recorder, watcher: FileReadWatcher
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.json").write_text("{}")
    (outside / "x.json").read_text()
    os.listdir(outside)
    glob.glob(str(outside / "*"))
    assert recorder.reads == [] and recorder.lists == []


def test_python_files_and_directories_are_not_reads(
    root: Path, recorder: Recorder, watcher: FileReadWatcher
) -> None:
    (root / "mod.py").read_text()
    cache = root / "__pycache__"
    cache.mkdir()
    (cache / "blob.bin").write_bytes(b"")
    (cache / "blob.bin").read_bytes()
    os.close(os.open(root / "data", os.O_RDONLY))
    assert recorder.reads == []


def test_disabled_reports_nothing(root: Path, recorder: Recorder, watcher: FileReadWatcher) -> None:
    watcher.disable()
    (root / "data" / "config.json").read_text()
    os.listdir(root / "data")
    assert recorder.reads == [] and recorder.lists == []
    watcher.enable()
    (root / "data" / "config.json").read_text()
    assert recorder.reads == [str(root / "data" / "config.json")]


def test_fds_are_ignored(root: Path, recorder: Recorder, watcher: FileReadWatcher) -> None:
    fd = os.open(root / "data", os.O_RDONLY)
    try:
        os.listdir(fd)
        with open(os.open(root / "data" / "config.json", os.O_RDONLY)) as handle:
            handle.read()
    finally:
        os.close(fd)
    assert recorder.lists == []
    assert recorder.reads == [str(root / "data" / "config.json")]  # the os.open, not the fd


def test_callbacks_reading_files_do_not_recurse(root: Path, recorder: Recorder) -> None:
    seen: list[str] = []

    def on_read(path: str) -> None:
        seen.append(path)
        (root / "data" / "other.json").read_text()  # would re-enter the hook

    watcher = FileReadWatcher(recorder.is_project_path, on_read, recorder.lists.append)
    watcher.enable()
    try:
        (root / "data" / "config.json").read_text()
    finally:
        watcher.disable()
    assert seen == [str(root / "data" / "config.json")]


def test_a_failing_callback_does_not_break_open(root: Path, recorder: Recorder) -> None:
    def on_read(path: str) -> None:
        raise RuntimeError("bug in the recorder")

    watcher = FileReadWatcher(recorder.is_project_path, on_read, recorder.lists.append)
    watcher.enable()
    try:
        assert "limit" in (root / "data" / "config.json").read_text()
    finally:
        watcher.disable()
