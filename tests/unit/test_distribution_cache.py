"""core/distribution_cache.py: metadata read once, read again when any of its files changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_distributions import dist_info

from testmon_watch.core import distributions
from testmon_watch.core.cache_home import CACHE_ENV
from testmon_watch.core.distribution_cache import stamp_of
from testmon_watch.core.distributions import build_index


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    site = tmp_path / "site-packages"
    dist_info(site, "libx", "1.0", {"libx/__init__.py": ""}, requires=("liby",))
    dist_info(site, "liby", "2.0", {"liby.py": ""}, entry_points="[pytest11]\ny = liby\n")
    return site


def index_summary(site: Path) -> dict[str, tuple[str, list[str], list[str], bool]]:
    index = build_index(str(site.parent), [str(site)])
    return {
        name: (d.version, sorted(d.requires), sorted(d.tops), d.plugin)
        for name, d in index.by_name.items()
    }


def forbid_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(site: str, metadata: str) -> None:
        raise AssertionError(f"read {metadata}")

    monkeypatch.setattr(distributions, "_read_distribution", fail)


def test_a_second_build_reads_no_metadata(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = index_summary(site)
    assert first == {
        "libx": ("1.0", ["liby"], ["libx"], False),
        "liby": ("2.0", [], ["liby", "liby.py"], True),
    }
    with monkeypatch.context() as patch:
        forbid_reading(patch)
        assert index_summary(site) == first


def test_a_changed_record_is_read_again(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index_summary(site)
    record = next(site.glob("libx-*.dist-info")) / "RECORD"
    record.write_text(record.read_text() + "libx_extra/__init__.py,,\n")
    assert index_summary(site)["libx"][2] == ["libx", "libx_extra"]


def test_metadata_rewritten_in_place_is_read_again(site: Path) -> None:
    # setuptools rewrites an egg-info's files in place: the folder's mtime stays.
    index_summary(site)
    metadata = next(site.glob("libx-*.dist-info")) / "METADATA"
    stat = metadata.stat()
    metadata.write_text(metadata.read_text().replace("Version: 1.0", "Version: 1.0.1"))
    os.utime(metadata, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime, not same size
    assert index_summary(site)["libx"][0] == "1.0.1"


def test_a_damaged_or_foreign_cache_is_ignored(site: Path, tmp_path: Path) -> None:
    expected = index_summary(site)
    cache = tmp_path / "cache" / "distributions.json"
    for text in ("not json", '{"format": 99, "entries": {}}', "[1, 2]", '{"format": 1}'):
        cache.write_text(text)
        assert index_summary(site) == expected
    # An entry of another shape for files that did not change: read them again.
    metadata = str(next(site.glob("libx-*.dist-info")))
    entry = {"stamp": stamp_of(metadata), "fields": {"not": "a distribution"}}
    cache.write_text(json.dumps({"format": 1, "entries": {metadata: entry}}))
    assert index_summary(site) == expected


def test_an_unwritable_cache_home_only_costs_the_reading(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    assert index_summary(site)["libx"][0] == "1.0"
    assert index_summary(site)["liby"][0] == "2.0"
