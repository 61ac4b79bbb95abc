"""PathFilter: built-in noise, .gitignore files, and the user's include/ignore globs."""

from __future__ import annotations

from pathlib import Path

import pytest

from testmon_watch.watch import PathFilter


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / ".gitignore").write_text("build/\n*.log\n!keep.log\n/top_only.txt\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".gitignore").write_text("*.dat\n!important.dat\n")
    (tmp_path / "myenv").mkdir()
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return tmp_path


@pytest.mark.parametrize(
    "relpath",
    [
        ".git/HEAD",
        ".hg/store/data",
        ".svn/entries",
        ".venv/lib/python3.11/site-packages/x.py",
        "venv/bin/activate",
        "env/lib/x.py",
        ".tox/py311/log.txt",
        ".nox/tests/x.py",
        "myenv/lib/site.py",  # any directory holding pyvenv.cfg
        "pkg/__pycache__/mod.cpython-311.pyc",
        "pkg/stray.pyc",
        ".testmondata",
        ".testmondata-wal",
        ".testmondata-shm",
        ".coverage",
        ".coverage.host.1234.XyZ",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/content",
        "web/node_modules/left-pad/index.js",
        "my_pkg.egg-info/PKG-INFO",
        "pkg/.mod.py.swp",
        "pkg/.mod.py.swo",
        "pkg/mod.py~",
        "pkg/4913",
        "pkg/#mod.py#",
        "pkg/.#mod.py",
        "pkg/mod.py___jb_tmp___",
        "pkg/mod.py___jb_old___",
        "pkg/mod.py.tmp",
        "pkg/mod.py.bak",
        "pkg/mod.py.orig",
        "docs/.~lock.notes.odt#",
        "build/lib/pkg/mod.py",  # root .gitignore: build/
        "logs/run.log",  # root .gitignore: *.log (unanchored)
        "top_only.txt",  # root .gitignore: /top_only.txt
        "sub/blob.dat",  # sub/.gitignore: *.dat
        "sub/deeper/blob.dat",
    ],
)
def test_ignored(root: Path, relpath: str) -> None:
    assert PathFilter(root).ignored(relpath)


@pytest.mark.parametrize(
    "relpath",
    [
        "app.py",
        "pkg/mod.py",
        "tests/test_app.py",
        "data/fixture.json",
        ".coveragerc",  # configuration, not coverage data
        ".gitignore",
        "pyproject.toml",
        "conftest.py",
        "keep.log",  # negated in the root .gitignore
        "elsewhere/top_only.txt",  # the root pattern is anchored
        "sub/important.dat",  # negated in sub/.gitignore
        "other/blob.dat",  # sub/.gitignore does not apply outside sub/
        "environment.py",  # `env` is a directory name, not a prefix
        "pkg/envs/x.py",
    ],
)
def test_watched(root: Path, relpath: str) -> None:
    assert not PathFilter(root).ignored(relpath)


def test_directories(root: Path) -> None:
    path_filter = PathFilter(root)
    for directory in (".git", "myenv", "build", "pkg/__pycache__", "a/b/node_modules"):
        assert path_filter.is_dir_ignored(directory), directory
    for directory in ("pkg", "sub", "tests", "a/b"):
        assert not path_filter.is_dir_ignored(directory), directory


def test_a_file_below_an_ignored_directory_cannot_be_negated_back(root: Path) -> None:
    """As in git: `!build/keep.py` does not re-include a file of an excluded directory."""
    (root / ".gitignore").write_text("build/\n!build/keep.py\n")
    assert PathFilter(root).ignored("build/keep.py")


def test_git_info_exclude(root: Path) -> None:
    (root / ".git" / "info").mkdir(parents=True)
    (root / ".git" / "info" / "exclude").write_text("scratch/\n")
    assert PathFilter(root).ignored("scratch/notes.py")


def test_user_ignore_globs(root: Path) -> None:
    path_filter = PathFilter(root, ignore=["docs/", "*.generated.py", "/local.py"])
    assert path_filter.ignored("docs/index.md")
    assert path_filter.ignored("pkg/api.generated.py")
    assert path_filter.ignored("local.py")
    assert not path_filter.ignored("pkg/local.py")
    assert path_filter.is_dir_ignored("docs")


def test_include_wins_over_everything_but_vcs(root: Path) -> None:
    path_filter = PathFilter(
        root,
        include=["build/gen/**", ".venv/lib/patched.py", ".git/hooks/*", "*.log"],
        ignore=["build/gen/skip.py"],
    )
    assert not path_filter.ignored("build/gen/schema.py")
    assert not path_filter.ignored("build/gen/skip.py")  # include beats ignore
    assert not path_filter.ignored(".venv/lib/patched.py")  # ... and built-in noise
    assert not path_filter.ignored("logs/run.log")  # ... and .gitignore
    assert path_filter.ignored("build/other.py")
    assert path_filter.ignored(".git/hooks/pre-commit")  # never .git
    assert path_filter.is_dir_ignored(".git")


def test_anchored_includes_keep_only_their_prefix_open(root: Path) -> None:
    path_filter = PathFilter(root, include=["build/gen/**"])
    assert not path_filter.is_dir_ignored("build")
    assert not path_filter.is_dir_ignored("build/gen")
    assert path_filter.is_dir_ignored("build/lib")
    assert path_filter.is_dir_ignored(".venv")


def test_unanchored_includes_keep_every_ignored_directory_open(root: Path) -> None:
    path_filter = PathFilter(root, include=["*.schema.json"])
    assert not path_filter.is_dir_ignored("build")
    assert not path_filter.ignored("build/a.schema.json")
    assert path_filter.ignored("build/a.py")
    assert path_filter.is_dir_ignored(".git")


def test_walk_lists_watched_files_and_prunes_ignored_directories(root: Path) -> None:
    for rel in ("app.py", "pkg/mod.py", "build/x.py", "myenv/lib/y.py", ".git/HEAD", "run.log"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    assert set(PathFilter(root).walk()) == {
        ".gitignore",
        "sub/.gitignore",
        "app.py",
        "pkg/mod.py",
    }
    assert set(PathFilter(root).walk("pkg")) == {"pkg/mod.py"}


def test_walk_does_not_follow_symlinked_directories(root: Path) -> None:
    (root / "pkg").mkdir()
    (root / "pkg" / "mod.py").write_text("x")
    (root / "pkg" / "loop").symlink_to(root)
    assert set(PathFilter(root).walk("pkg")) == {"pkg/mod.py"}


def test_invalidate_rereads_gitignore_and_venv_markers(root: Path) -> None:
    path_filter = PathFilter(root)
    assert not path_filter.ignored("out/a.py")
    assert not path_filter.ignored("newenv/lib/b.py")
    (root / ".gitignore").write_text("out/\n")
    (root / "newenv").mkdir()
    (root / "newenv" / "pyvenv.cfg").write_text("")
    path_filter.invalidate()
    assert path_filter.ignored("out/a.py")
    assert path_filter.ignored("newenv/lib/b.py")


def test_affects_decisions() -> None:
    assert PathFilter.affects_decisions(".gitignore")
    assert PathFilter.affects_decisions("sub/.gitignore")
    assert PathFilter.affects_decisions("env2/pyvenv.cfg")
    assert PathFilter.affects_decisions(".git/info/exclude")
    assert not PathFilter.affects_decisions("app.py")
