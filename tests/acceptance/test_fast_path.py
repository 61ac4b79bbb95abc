"""The no-change fast path: taken only when nothing can run, never when something might."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FAST = "nothing changed: not collected"

ALL = {
    "tests/test_calc.py::test_add",
    "tests/test_calc.py::test_mul",
    "tests/test_data.py::test_limit",
}


def make_project(project) -> None:
    project.write("pytest.ini", "[pytest]\npythonpath = .\ntestpaths = tests\n")
    project.write(
        "calc.py",
        """
        def add(a, b):
            return a + b


        def mul(a, b):
            return a * b
    """,
    )
    project.write(
        "tests/conftest.py",
        """
        import pytest


        @pytest.fixture
        def two():
            return 2
    """,
    )
    project.write(
        "tests/test_calc.py",
        """
        from calc import add, mul


        def test_add(two):
            assert add(1, two) == 3


        def test_mul(two):
            assert mul(two, 3) == 6
    """,
    )
    project.write("tests/limit.json", '{"limit": 3}\n')
    project.write(
        "tests/test_data.py",
        """
        import json
        from pathlib import Path


        def test_limit():
            data = json.loads((Path(__file__).parent / "limit.json").read_text())
            assert data["limit"] == 3
    """,
    )
    first = project.first_run()
    assert first.ran == ALL


def assert_fast(run, recorded: int = 3) -> None:
    assert FAST in run.text, run.text
    assert run.ran == set()
    assert run.ret == 0, run.text
    assert f"deselected {recorded}" in run.text
    assert f"{recorded} deselected in " in run.text  # pytest's summary line, for parsers


def assert_not_fast(run) -> None:
    assert FAST not in run.text, run.text


def test_nothing_changed_ends_early_with_a_pytest_summary(project) -> None:
    make_project(project)
    run = project.run()
    assert_fast(run)
    assert "changed: nothing; 0 of 3 recorded tests to run" in run.text
    assert "test session starts" in run.text


def test_quiet_output_keeps_the_summary_line(project) -> None:
    make_project(project)
    result = project.pytester.runpytest_subprocess("--testmon", "-q", "-p", "no:cacheprovider")
    assert result.ret == 0
    lines = [line for line in result.outlines if line.strip()]
    assert lines[-1].startswith("3 deselected in "), result.outlines
    assert "test session starts" not in result.stdout.str()


def test_a_mtime_change_alone_keeps_the_fast_path(project) -> None:
    make_project(project)
    path = project.path / "calc.py"
    path.write_text(path.read_text())  # same content, new mtime
    assert_fast(project.run())
    assert_fast(project.run())


def test_a_changed_source_file_runs_its_tests(project) -> None:
    make_project(project)
    project.replace("calc.py", "return a * b", "return b * a")
    run = project.run()
    assert_not_fast(run)
    assert run.ran == {"tests/test_calc.py::test_mul"}
    assert_fast(project.run())


def test_a_changed_conftest_runs_its_tests(project) -> None:
    make_project(project)
    project.replace("tests/conftest.py", "return 2", "return 1 + 1")
    run = project.run()
    assert_not_fast(run)
    assert {"tests/test_calc.py::test_add", "tests/test_calc.py::test_mul"} <= run.ran


def test_a_new_test_file_runs(project) -> None:
    make_project(project)
    project.write(
        "tests/sub/test_new.py",
        """
        def test_new():
            assert True
    """,
    )
    run = project.run()
    assert_not_fast(run)
    assert run.ran == {"tests/sub/test_new.py::test_new"}
    assert_fast(project.run(), recorded=4)


def test_a_new_conftest_is_not_skipped(project) -> None:
    make_project(project)
    project.write("tests/sub/conftest.py", "import pytest\n")
    assert_not_fast(project.run())


def test_a_test_that_failed_last_time_runs_again(project, monkeypatch) -> None:
    make_project(project)
    monkeypatch.setenv("TMW_FAST_PATH_FAIL", "1")  # not a file: no change to detect
    project.write(
        "tests/test_env.py",
        """
        import os


        def test_env():
            assert os.environ.get("TMW_FAST_PATH_FAIL") != "1"
    """,
    )
    failing = project.run()
    assert failing.outcomes == {"tests/test_env.py::test_env": "FAILED"}
    monkeypatch.delenv("TMW_FAST_PATH_FAIL")
    again = project.run()
    assert_not_fast(again)
    assert again.outcomes == {"tests/test_env.py::test_env": "PASSED"}
    assert_fast(project.run(), recorded=4)


def test_a_deleted_test_file_takes_the_normal_path(project) -> None:
    make_project(project)
    project.delete("tests/test_data.py")
    run = project.run()
    assert_not_fast(run)
    assert run.ran == set()
    assert run.ret == 0, run.text
    assert_fast(project.run(), recorded=2)


def test_a_changed_data_file_runs_its_reader(project) -> None:
    make_project(project)
    project.write("tests/limit.json", '{"limit": 4}\n')
    run = project.run()
    assert_not_fast(run)
    assert run.outcomes == {"tests/test_data.py::test_limit": "FAILED"}


@pytest.mark.parametrize(
    "args",
    [
        ["-k", "add"],
        ["-m", "not slow"],
        ["tests/test_calc.py::test_add"],
        ["--testmon-noselect"],
        ["--testmon-verify"],
        ["--testmon-forceselect", "-k", "add"],
        ["--collect-only"],
        ["--unknown-option-of-a-conftest"],
    ],
    ids=" ".join,
)
def test_options_that_change_what_runs_take_the_normal_path(project, args) -> None:
    make_project(project)
    run = project.run(*args)
    assert_not_fast(run)


def test_k_runs_the_tests_it_matches(project) -> None:
    make_project(project)
    run = project.run("-k", "add or mul")
    assert_not_fast(run)
    assert run.ran == {"tests/test_calc.py::test_add", "tests/test_calc.py::test_mul"}


def test_a_path_argument_keeps_the_fast_path(project) -> None:
    make_project(project)
    assert_fast(project.run("tests/test_calc.py"))


def test_a_package_no_test_uses_runs_nothing_and_keeps_the_fast_path(project) -> None:
    make_project(project)
    # The project root is on sys.path (pythonpath = .): metadata there is a package.
    project.write(
        "fakepkg-1.0.dist-info/METADATA",
        """
        Metadata-Version: 2.1
        Name: fakepkg
        Version: 1.0
    """,
    )
    run = project.run()
    assert_not_fast(run)  # the normal path compares the packages each test used
    assert run.ran == set()
    assert "environment changed: fakepkg 1.0 installed" in run.text
    assert_fast(project.run())


def test_the_ini_option_alone_records_and_keeps_the_fast_path(project) -> None:
    make_project(project)
    project.write("pytest.ini", "[pytest]\npythonpath = .\ntestpaths = tests\ntestmon = true\n")
    project.write("tests/test_more.py", "def test_more():\n    assert True\n")
    assert project.run(testmon=False).ran == {"tests/test_more.py::test_more"}
    assert_fast(project.run(testmon=False), recorded=4)


def test_another_environment_name_takes_the_normal_path(project) -> None:
    make_project(project)
    run = project.run("--testmon-env", "other")
    assert_not_fast(run)
    assert run.ran == ALL


def console_pytest(project, *args: str, script: Path | None = None) -> str:
    """`pytest` as users type it: the console script, whose sys.path has no project root
    (`python -m pytest` would put the working directory, the root, first)."""
    script = script or Path(sys.executable).with_name("pytest")
    done = subprocess.run(
        [str(script), "--testmon", "-p", "no:cacheprovider", *args],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def egg_info(project, name: str, version: str) -> None:
    """`NAME.egg-info` at the root, as `pip install -e .` with setuptools leaves it."""
    project.write(
        f"{name}.egg-info/PKG-INFO",
        f"""
        Metadata-Version: 2.1
        Name: {name}
        Version: {version}
    """,
    )


def make_root_conftest_project(project) -> None:
    """No `pythonpath`: the root reaches sys.path only when its conftest.py is imported."""
    make_project(project)
    project.write("pytest.ini", "[pytest]\ntestpaths = tests\n")
    # Imported in prepend mode, a root conftest.py puts the root first on sys.path.
    project.write("conftest.py", "import pytest\n\n\n@pytest.fixture\ndef three():\n    return 3\n")
    console_pytest(project)  # records with the new conftest and ini


def test_egg_info_of_the_installed_version_at_the_root_keeps_the_fast_path(project) -> None:
    make_root_conftest_project(project)
    egg_info(project, "pytest", pytest.__version__)  # what an editable install leaves
    output = console_pytest(project)
    assert FAST in output, output


def test_egg_info_of_a_package_not_installed_takes_the_normal_path(project) -> None:
    make_root_conftest_project(project)
    egg_info(project, "notinstalledpkg", "1.0")
    output = console_pytest(project)
    assert FAST not in output, output
    assert "environment changed: notinstalledpkg 1.0 installed" in output, output
    # Recorded now, but the fast path cannot tell whether the root will be on
    # sys.path when the normal path reads the environment: the normal path decides.
    output = console_pytest(project, "--testmon-explain")
    assert FAST not in output, output
    assert "0 selected" in output, output
    assert (
        NOT_TAKEN + "the rootdir holds package metadata (notinstalledpkg 1.0) that is not installed"
    ) in output.splitlines(), output


def test_a_text_file_without_doctests_keeps_the_fast_path(project) -> None:
    # `test*.txt` is pytest's doctest glob: more-itertools' requirements/testing.txt
    # is collected as a doctest file that holds no test.
    make_project(project)
    project.write("tests/requirements/testing.txt", "coverage\npytest >= 8\n")
    assert_fast(project.run())
    # Named on the command line, what pytest makes of it is the normal path's to say.
    assert_not_fast(project.run("tests/requirements/testing.txt"))


def test_a_new_doctest_file_runs(project) -> None:
    make_project(project)
    project.write("tests/test_usage.txt", ">>> 1 + 1\n2\n")
    run = project.run()
    assert_not_fast(run)
    assert run.ran == {"tests/test_usage.txt::test_usage.txt"}
    assert_fast(project.run(), recorded=4)


# -- --testmon-explain: one line on why the fast path was or was not taken ------------------

TAKEN = "testmon-watch: fast path taken: nothing changed since the last run"
NOT_TAKEN = "testmon-watch: fast path not taken: "


def explain_line(run) -> str:
    """The one fast-path line of a `--testmon-explain` run."""
    lines: list[str] = [
        line for line in run.result.outlines if line.startswith("testmon-watch: fast path")
    ]
    assert len(lines) == 1, run.text
    return lines[0]


@pytest.mark.parametrize("verbosity", ["-v", "-q"])
def test_explain_says_the_fast_path_was_taken(project, verbosity) -> None:
    make_project(project)
    run = project.run_class(
        project.pytester.runpytest_subprocess(
            "--testmon", "--testmon-explain", verbosity, "-p", "no:cacheprovider"
        )
    )
    assert run.ret == 0, run.text
    assert "3 deselected in " in run.text
    assert explain_line(run).startswith(TAKEN)


def test_explain_alone_turns_testmon_on_and_keeps_the_fast_path(project) -> None:
    make_project(project)
    run = project.run("--testmon-explain", testmon=False)
    assert_fast(run)
    assert explain_line(run).startswith(TAKEN)


def explained(project, *args: str):
    """`pytest --testmon --testmon-explain -q`: the line is there at -q too."""
    return project.run_class(
        project.pytester.runpytest_subprocess(
            "--testmon", "--testmon-explain", "-q", "-p", "no:cacheprovider", *args
        )
    )


def test_explain_names_the_changed_files(project) -> None:
    make_project(project)
    project.replace("calc.py", "return a * b", "return b * a")
    run = explained(project)
    assert explain_line(run) == NOT_TAKEN + "files changed (calc.py (mul))"
    assert "1 passed" in run.text


def test_explain_names_a_new_test_file(project) -> None:
    make_project(project)
    project.write("tests/sub/test_new.py", "def test_new():\n    assert True\n")
    run = explained(project)
    assert explain_line(run) == NOT_TAKEN + "new test file tests/sub/test_new.py"
    assert "1 passed" in run.text


@pytest.mark.parametrize(
    "ignores",
    [
        ("--ignore=tests/test_slow.py", "--ignore=tests/slow"),
        ("--ignore-glob=*/test_slow*",),
    ],
)
def test_an_ignored_test_file_keeps_the_fast_path(project, ignores) -> None:
    # packaging's bench run ignores its 51,524-case test_version.py: never recorded,
    # so the walk took it for a new test file on every run.
    make_project(project)
    project.write("tests/test_slow.py", "def test_slow():\n    assert True\n")
    project.write("tests/slow/test_slow_too.py", "def test_slow_too():\n    assert True\n")
    assert explained(project, *ignores).ret == 0  # records what is not ignored
    run = explained(project, *ignores)
    assert explain_line(run).startswith(TAKEN)
    # Without the option the files are new to the data file: the normal path runs them.
    run = explained(project)
    assert explain_line(run).startswith(NOT_TAKEN + "new test file tests/")


def test_explain_names_the_changed_environment(project) -> None:
    make_project(project)
    # `pythonpath = .` puts the root on sys.path: its metadata is an installed package.
    project.write(
        "fakepkg-1.0.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: fakepkg\nVersion: 1.0\n",
    )
    run = explained(project)
    assert explain_line(run) == NOT_TAKEN + "environment changed: fakepkg 1.0 installed"
    assert "passed" not in run.text  # no test uses fakepkg


def test_explain_names_tests_that_failed_last_time(project, monkeypatch) -> None:
    make_project(project)
    monkeypatch.setenv("TMW_FAST_PATH_FAIL", "1")
    project.write(
        "tests/test_env.py",
        "import os\n\n\ndef test_env():\n    assert os.environ.get('TMW_FAST_PATH_FAIL') != '1'\n",
    )
    project.run()
    run = explained(project)
    assert explain_line(run) == NOT_TAKEN + "1 test to run again (failed or unfinished last time)"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--testmon-verify"], "option --testmon-verify may change what runs"),
        (["-k", "add"], "option -k may change what runs"),
        (["tests/test_calc.py::test_add"], "node id tests/test_calc.py::test_add given"),
        (["--testmon-env", "other"], "nothing recorded for environment 'other'"),
        (["-n", "1"], "xdist runs the tests (-n/--dist)"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_explain_names_what_the_command_line_changes(project, args, reason) -> None:
    if args[0] == "-n":
        pytest.importorskip("xdist")
    make_project(project)
    assert explain_line(explained(project, *args)) == NOT_TAKEN + reason


# -- project layouts: what installing a project leaves where the fast path looks --------------


def dist_info(project, name: str, version: str) -> None:
    """`NAME-VERSION.dist-info` at the root, as some build backends and `pip install
    --target .` leave it."""
    project.write(
        f"{name}-{version}.dist-info/METADATA",
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    )


def test_dist_info_of_the_installed_version_at_the_root_keeps_the_fast_path(project) -> None:
    make_root_conftest_project(project)
    dist_info(project, "pytest", pytest.__version__)
    output = console_pytest(project, "--testmon-explain")
    assert FAST in output, output
    assert TAKEN in output, output


def test_dist_info_of_another_version_at_the_root_takes_the_normal_path(project) -> None:
    make_root_conftest_project(project)
    dist_info(project, "pytest", "0.1")
    console_pytest(project)  # the root conftest puts the root on sys.path: recorded so
    output = console_pytest(project, "--testmon-explain")
    assert FAST not in output, output
    assert (
        NOT_TAKEN + "the rootdir holds package metadata (pytest 0.1) that is not installed"
    ) in output.splitlines(), output


def fresh_venv(path: Path) -> Path:
    """A new virtualenv that sees this one's packages (pytest, testmon-watch), as
    `--system-site-packages` would, with its own `pytest` console script; returns it."""
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    # addsitedir, not a plain path line: our own .pth files (the editable
    # testmon-watch among them) must run too.
    Path(purelib, "_outer_venv.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    script = path / "bin" / "pytest"  # what pip writes for pytest's console_scripts entry
    script.write_text(
        f"#!{python}\nimport sys\nfrom pytest import console_main\nsys.exit(console_main())\n"
    )
    script.chmod(0o755)
    return path


def pip_install_editable(venv: Path, project_dir: Path) -> None:
    """`pip install -e .` into `venv`, as users run it: setuptools comes from the
    package index into pip's isolated build environment (as for `make venv`)."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")),
            *("install", "--quiet", "--no-deps", "-e", str(project_dir)),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"pip install -e failed here: {done.stderr.strip()[-300:]}")


def make_src_layout_project(project) -> None:
    project.write(
        "pyproject.toml",
        """
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "srcpkg"
        version = "1.0"

        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    )
    project.delete("pytest.ini")  # the fixture's, with `pythonpath = .`
    project.write("src/srcpkg/__init__.py", "def add(a, b):\n    return a + b\n")
    project.write("conftest.py", "import pytest\n")  # puts the root on sys.path (prepend)
    project.write(
        "tests/test_add.py",
        "from srcpkg import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    )


def test_an_editable_src_layout_keeps_the_fast_path(project, tmp_path_factory) -> None:
    make_src_layout_project(project)
    venv = fresh_venv(tmp_path_factory.mktemp("venv") / "venv")
    pip_install_editable(venv, project.path)
    # setuptools leaves its metadata beside the package too, in the folder the
    # .pth puts on sys.path (some versions build it elsewhere: then as they would).
    if not (project.path / "src" / "srcpkg.egg-info").is_dir():
        project.write(
            "src/srcpkg.egg-info/PKG-INFO", "Metadata-Version: 2.1\nName: srcpkg\nVersion: 1.0\n"
        )
    site = {p.name for p in next(venv.glob("lib/python*/site-packages")).iterdir()}
    assert "srcpkg-1.0.dist-info" in site, site
    assert any(name.startswith("__editable__") for name in site), site
    pytest_script = venv / "bin" / "pytest"
    assert "1 passed" in console_pytest(project, script=pytest_script)
    output = console_pytest(project, "--testmon-explain", script=pytest_script)
    assert FAST in output, output
    assert TAKEN in output, output
    project.replace("src/srcpkg/__init__.py", "a + b", "b + a")
    output = console_pytest(project, "--testmon-explain", "-q", script=pytest_script)
    assert "1 passed" in output, output
    assert NOT_TAKEN + "files changed (src/srcpkg/__init__.py (add))" in output.splitlines()
