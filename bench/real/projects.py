"""The real projects of the benchmark: pinned sdists, their test deps, pytest args and the edit.

Each entry is a popular PyPI project whose sdist ships its own test suite. The
sdist is pinned by version and sha256 (fetch.py refuses any other bytes); the
project is installed into each tool's venv with ``pip install -e`` of its own
checkout, as a developer works on it, plus ``test_deps``. ``pytest_args`` are
added to every pytest run of every tool (plain, pytest-testmon, ours, both
watchers), ``test_paths`` to every run but the bare start; ``edit`` names the
function whose body the edit phases change.

Measured on the CI machine (2 cores, Python 3.11), plain pytest in the
project's venv: see ``suite`` (tests collected, how many pass, wall time).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EditTarget:
    """The function whose body is edited: a file of the checkout and a function in it."""

    path: str  # relative to the project root
    function: str  # a top-level function (or "Class.method")


@dataclass(frozen=True)
class RealProject:
    """One pinned project and how to test it."""

    name: str  # the bench's short name, also the --project value
    dist: str  # name on PyPI
    version: str
    sdist: str  # file name of the sdist on PyPI
    sha256: str  # of the sdist; any other bytes are refused
    covers: str  # which part of the ground it covers
    layout: str  # "flat" or "src"
    test_deps: tuple[str, ...]  # pip requirements the tests need beyond the project
    pytest_args: tuple[str, ...]  # options added to every pytest run of every tool
    # Options only pytest-testmon's runs get (its own pytest runs and pytest-watcher's):
    # what it needs to run at all on this project.
    edit: EditTarget
    test_paths: tuple[str, ...] = ()  # given to every run but the bare start ("" = testpaths)
    testmon_args: tuple[str, ...] = ()
    suite: str = ""  # plain pytest on the CI machine: tests, outcome, wall time ("" = not yet)
    notes: str = ""


# Options every project's runs get. Not `-p no:cacheprovider`: pytest-testmon 2.2.0
# stops with "INTERNALERROR> KeyError: 'lf'" without the cache plugin. Its files cannot
# pass between tools: each phase starts from a reset checkout (no .pytest_cache).
COMMON_ARGS: tuple[str, ...] = ()

PROJECTS: dict[str, RealProject] = {
    p.name: p
    for p in (
        RealProject(
            name="toolz",
            dist="toolz",
            version="1.2.0",
            sdist="toolz-1.2.0.tar.gz",
            sha256="9667a038e9d6ecba37995e26cb2f59ec6420b6ad8dd9677de59db9b956b08490",
            covers="pure Python, 193 tests inside the package, setuptools "
            "(toolz.egg-info at the root)",
            layout="flat",
            test_deps=(),
            pytest_args=COMMON_ARGS,
            edit=EditTarget("toolz/itertoolz.py", "frequencies"),
        ),
        RealProject(
            name="more-itertools",
            dist="more-itertools",
            version="11.2.1",
            sdist="more_itertools-11.2.1.tar.gz",
            sha256="cbf08fd0af284dc69718b9b76a8e6203df624d70209ea511e4219d350c856f63",
            covers="pure Python, 765 tests (mostly unittest classes), flit",
            layout="flat",
            test_deps=(),
            pytest_args=COMMON_ARGS,
            edit=EditTarget("more_itertools/more.py", "split_at"),
        ),
        RealProject(
            name="jinja2",
            dist="jinja2",
            version="3.1.6",
            sdist="jinja2-3.1.6.tar.gz",
            sha256="0137fb05990d35f1275a587e9aee6d56da821fc83491a0fb838183be43f66d6d",
            covers="src/ layout, 909 tests (asyncio and trio), flit",
            layout="src",
            test_deps=("trio",),
            pytest_args=COMMON_ARGS,
            edit=EditTarget("src/jinja2/filters.py", "do_truncate"),
        ),
        RealProject(
            name="packaging",
            dist="packaging",
            version="26.4",
            sdist="packaging-26.4.tar.gz",
            sha256="c4b671c41ddb9bf26e543c37723610d28fb6bf7affc4da17cf048d419d2c062a",
            covers="over 2,000 tests (12,683, heavily parametrized), src/ layout, flit",
            layout="src",
            test_deps=("hypothesis", "pretend", "tomli_w"),
            # test_version.py alone is 51,524 of the 64,207 tests (parametrized over
            # every pair of versions): left out, the rest still has 12,683.
            pytest_args=(*COMMON_ARGS, "--ignore=tests/test_version.py"),
            # Its addopts say `-p no:legacypath`; pytest-testmon 2.2.0 reads config.rootdir,
            # which that plugin provides ("INTERNALERROR> AttributeError: 'Config' object
            # has no attribute 'rootdir'"). Given back to pytest-testmon only, with the
            # warning that loading it so late raises (its filterwarnings is "error").
            testmon_args=("-p", "legacypath", "-W", "ignore::pytest.PytestAssertRewriteWarning"),
            edit=EditTarget("src/packaging/utils.py", "canonicalize_name"),
        ),
        RealProject(
            name="opt-einsum",
            dist="opt-einsum",
            version="3.4.0",
            sdist="opt_einsum-3.4.0.tar.gz",
            sha256="96ca72f1b886d148241348783498194c577fa30a8faac108586b14f1ba4473ac",
            covers="tests import numpy (a heavy third-party stack), 7,891 tests inside "
            "the package, hatchling",
            layout="flat",
            test_deps=("numpy",),
            pytest_args=COMMON_ARGS,
            edit=EditTarget("opt_einsum/paths.py", "better_size_first"),
        ),
    )
}

# The smallest project: what --quick runs.
QUICK = "toolz"
