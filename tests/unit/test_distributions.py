"""core/distributions.py: who owns a file, what a test's packages require, the pseudo-rows.

Real directories laid out as pip leaves them (dist-info with METADATA and
RECORD, an egg-info, .pth files, an editable install's direct_url.json).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from testmon_watch.core import distributions
from testmon_watch.core.changes import detect_changes, read_state
from testmon_watch.core.db import FileRow
from testmon_watch.core.distributions import (
    DIST_KIND,
    GLOBAL_KIND,
    LISTING_KIND,
    build_index,
    canonical_name,
    current_state,
    dist_path,
    global_path,
    listing_path,
    parse_path,
)


def dist_info(
    site: Path,
    name: str,
    version: str,
    files: dict[str, str],
    requires: tuple[str, ...] = (),
    entry_points: str = "",
    direct_url: Mapping[str, object] | None = None,
) -> Path:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    header = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    header += "".join(f"Requires-Dist: {r}\n" for r in requires)
    (info / "METADATA").write_text(header + "\nA description: not a header.\n")
    if entry_points:
        (info / "entry_points.txt").write_text(entry_points)
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    rows = []
    for path, text in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(text)
        quoted = f'"{path}"' if "," in path else path
        rows.append(f"{quoted},sha256=x,{len(text)}")
    rows += [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,", "../../../bin/tool,,"]
    (info / "RECORD").write_text("\n".join(rows) + "\n")
    return info


def test_pseudo_paths_round_trip_and_names_are_canonical() -> None:
    assert dist_path("default", "Foo_Bar.baz") == "<dist>/default/foo-bar-baz"
    assert parse_path(dist_path("py/3.11", "numpy")) == (DIST_KIND, "py/3.11", "numpy")
    assert parse_path(listing_path("e")) == (LISTING_KIND, "e", "")
    assert parse_path(global_path("e")) == (GLOBAL_KIND, "e", "")
    assert parse_path("src/dist/numpy.py") is None
    assert canonical_name("Zope.Interface") == "zope-interface"


def test_owners_of_files_modules_and_metadata(tmp_path: Path) -> None:
    site = tmp_path / "venv" / "lib" / "site-packages"
    info = dist_info(site, "libx", "1.0", {"libx/__init__.py": "", "libx/data/t.txt": "t"})
    dist_info(site, "six", "1.16", {"six.py": ""})
    dist_info(site, "odd", "2.0", {"odd,name/x.py": ""})  # a quoted RECORD row
    # Two distributions share a namespace package: a file in it belongs to both.
    dist_info(site, "ns-a", "1", {"ns/a/__init__.py": ""})
    dist_info(site, "ns-b", "1", {"ns/b/__init__.py": ""})
    index = build_index(str(tmp_path / "project"), [str(site)])
    assert index.owners_of_path(str(site / "libx" / "data" / "t.txt")) == {"libx"}
    assert index.owners_of_path(str(info / "METADATA")) == {"libx"}
    assert index.owners_of_path(str(site / "six.py")) == {"six"}
    assert index.owners_of_path(str(site / "odd,name" / "x.py")) == {"odd"}
    assert index.owners_of_path(str(site / "ns" / "a" / "__init__.py")) == {"ns-a", "ns-b"}
    assert index.owners_of_path(str(tmp_path / "elsewhere.py")) == frozenset()
    assert index.owners_of_module("json") == frozenset()  # the standard library


def test_requirements_extras_and_what_every_test_depends_on(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    dist_info(
        site, "pytest", "8.0", {"pytest/__init__.py": ""}, ("pluggy>=1", 'hypo; extra == "dev"')
    )
    dist_info(site, "pluggy", "1.5", {"pluggy/__init__.py": ""})
    dist_info(site, "hypo", "6.0", {"hypo/__init__.py": ""})
    plugin = "[pytest11]\nmine = myplugin\n"
    dist_info(site, "pytest-mine", "0.1", {"myplugin.py": ""}, ("helper",), plugin)
    dist_info(site, "helper", "1.0", {"helper/__init__.py": ""})
    dist_info(site, "startup", "1.0", {"startup.pth": "import os\n", "startup/__init__.py": ""})
    dist_info(site, "paths-only", "1.0", {"paths_only.pth": "/somewhere\n"})
    dist_info(site, "app-lib", "3.0", {"app_lib/__init__.py": ""}, ("pluggy", 'pq; extra == "x"'))
    dist_info(site, "pq", "1.0", {"pq/__init__.py": ""})
    index = build_index(str(tmp_path / "project"), [str(site)])
    # pytest and pytest plugins, .pth files (code or paths), and their needs, no extras.
    assert index.global_names() == {
        *("pytest", "pluggy", "pytest-mine", "helper", "startup", "paths-only")
    }
    # A test's packages with their extras' needs, but what every test has left out.
    assert index.dependencies({"app-lib"}) == {"app-lib", "pq"}
    # pytest's own imports in a test do not drag in pytest's extras.
    assert index.dependencies({"pytest", "app-lib"}) == {"app-lib", "pq"}
    # One asked for by name and not installed stays: installing it matters.
    assert index.dependencies({"notyet"}) == {"notyet"}


def test_the_projects_own_distribution_is_not_tracked(tmp_path: Path) -> None:
    root = tmp_path / "project"
    site = root / ".venv" / "lib" / "site-packages"  # a venv inside the project counts
    dist_info(site, "libx", "1.0", {"libx/__init__.py": ""})
    editable = {"url": root.as_uri(), "dir_info": {"editable": True}}
    dist_info(
        site,
        "myproject",
        "0.1.dev3+g1234",
        {"__editable__.myproject.pth": "import x\n"},
        (),
        "",
        editable,
    )
    other = {"url": (tmp_path / "sibling").as_uri(), "dir_info": {"editable": True}}
    dist_info(site, "sibling", "1.0", {"__editable__.sibling.pth": "/x\n"}, (), "", other)
    (root / "legacy.egg-info").mkdir(parents=True)
    (root / "legacy.egg-info" / "PKG-INFO").write_text("Name: legacy\nVersion: 1\n")
    index = build_index(str(root), [str(site), str(root)])
    assert index.project == {"myproject", "legacy"}
    assert "myproject" not in index.global_names()  # it installs a .pth, but it is ours
    assert "sibling" in index.global_names()  # another project's editable install
    assert index.owners_of_path(str(site / "libx" / "__init__.py")) == {"libx"}
    assert index.owners_of_path(str(tmp_path / "sibling" / "s.py")) == {"sibling"}
    assert current_state(dist_path("default", "myproject"), index).digest == ""  # type: ignore[union-attr]


def test_pseudo_rows_change_with_what_is_installed(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    dist_info(site, "libx", "1.0", {"libx/__init__.py": ""})
    before = build_index(str(tmp_path), [str(site)])
    upgraded = tmp_path / "site2"
    dist_info(upgraded, "libx", "2.0", {"libx/__init__.py": ""})
    dist_info(upgraded, "new", "1.0", {"new/__init__.py": ""})
    after = build_index(str(tmp_path), [str(upgraded)])
    for path in (dist_path("e", "libx"), listing_path("e")):
        old, new = current_state(path, before), current_state(path, after)
        assert old is not None and new is not None
        assert old.digest != new.digest and old.checksum != new.checksum
    absent = current_state(dist_path("e", "notyet"), after)
    assert absent is not None and absent.digest == ""  # a row recorded while absent
    assert current_state(global_path("e"), before) == current_state(global_path("e"), after)


def test_detect_changes_compares_only_the_named_environments_rows(tmp_path: Path) -> None:
    here = read_state(tmp_path, dist_path("here", "pytest"), DIST_KIND)[0]
    there = read_state(tmp_path, dist_path("there", "pytest"), DIST_KIND)[0]
    here.id, there.id = 1, 2
    stale = [
        distributions_row(here, "0.0.1"),
        distributions_row(there, "0.0.1"),
    ]
    assert [c.old.path for c in detect_changes(tmp_path, stale, "here").changed] == [here.path]
    assert detect_changes(tmp_path, stale).changed == []  # no environment named: none


def distributions_row(row: FileRow, version: str) -> FileRow:
    """`row` as if recorded under another version."""
    checksum = distributions.checksum(f"pytest=={version}")
    return FileRow(
        row.path, row.kind, 0, 0, version, [("<dist>", 0, 0, checksum)], [], None, row.id
    )
