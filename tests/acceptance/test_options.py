"""Options familiar to pytest-testmon users, plus --testmon-explain and --testmon-verify."""

from __future__ import annotations

CALC = """
    def add(a, b):
        return a + b


    def mul(a, b):
        return a * b
"""

TESTS = """
    import pytest
    from calc import add, mul


    def test_add():
        assert add(1, 2) == 3


    @pytest.mark.slow
    def test_mul():
        assert mul(2, 3) == 6


    def test_other():
        assert True
"""

ALL = {"test_calc.py::test_add", "test_calc.py::test_mul", "test_calc.py::test_other"}


def setup(project) -> None:
    project.write("calc.py", CALC)
    project.write("test_calc.py", TESTS)
    project.write("pytest.ini", "[pytest]\npythonpath = .\nmarkers =\n    slow: slow\n")
    project.first_run()


def test_noselect_runs_everything_but_still_records(project) -> None:
    setup(project)
    project.replace("calc.py", "return a * b", "return b * a")
    run = project.run("--testmon-noselect")
    assert run.ran == ALL
    # Recorded: the following plain --testmon run has nothing left to do.
    assert project.run().ran == set()


def test_nocollect_selects_without_recording(project) -> None:
    setup(project)
    project.replace("calc.py", "return a * b", "return b * a")
    assert project.run("--testmon-nocollect").ran == {"test_calc.py::test_mul"}
    # Nothing was recorded, so the test stays selected until a recording run.
    assert project.run("--testmon-nocollect").ran == {"test_calc.py::test_mul"}
    assert project.run().ran == {"test_calc.py::test_mul"}
    assert project.run().ran == set()


def test_keyword_runs_all_matches_unless_forceselect(project) -> None:
    setup(project)
    project.replace("calc.py", "return a * b", "return b * a")
    # -k alone: everything it matches runs (as with pytest-testmon) ...
    assert project.run("-k", "add or mul", "--testmon-nocollect").ran == {
        "test_calc.py::test_add",
        "test_calc.py::test_mul",
    }
    # ... with --testmon-forceselect, the intersection with the affected tests.
    assert project.run("-k", "add or other", "--testmon-forceselect").ran == set()
    assert project.run("-m", "slow", "--testmon-forceselect").ran == {"test_calc.py::test_mul"}


def test_a_marker_filter_in_the_ini_addopts_still_selects(project) -> None:
    setup(project)
    project.write(
        "pytest.ini",
        '[pytest]\npythonpath = .\naddopts = -m "not slow"\nmarkers =\n    slow: slow\n',
    )
    project.run()  # the ini changed: whatever it selects, then recorded
    project.replace("calc.py", "return a + b", "return b + a")
    run = project.run()
    # The project's standing filter is not a choice of this run: selection applies in it.
    assert run.ran == {"test_calc.py::test_add"}
    again = project.run("--testmon-explain")
    assert again.ran == set()
    assert "fast path taken" in again.text  # the standing filter does not rule it out
    # On the command line, -m chooses the tests of this run: all it matches run.
    assert project.run("-m", "not slow").ran == {
        "test_calc.py::test_add",
        "test_calc.py::test_other",
    }


def test_node_id_with_forceselect_is_intersected(project) -> None:
    setup(project)
    project.replace("calc.py", "return a + b", "return b + a")
    run = project.run("test_calc.py::test_mul", "--testmon-forceselect")
    assert run.ran == set()
    assert run.ret == 0


def test_no_testmon_switches_it_off(project) -> None:
    setup(project)
    run = project.run("--no-testmon")
    assert run.ran == ALL
    assert "testmon-watch: " not in run.text


def test_explain_says_why_each_test_runs_and_why_not(project) -> None:
    setup(project)
    project.replace("calc.py", "return a * b", "return b * a")
    project.write("test_new.py", "def test_brand_new():\n    assert 1\n")
    run = project.run("--testmon-explain")
    assert run.ran == {"test_calc.py::test_mul", "test_new.py::test_brand_new"}
    run.result.stdout.fnmatch_lines(
        [
            "*why these tests*",
            "test_calc.py::test_mul: calc.py changed in mul*",
            "test_new.py::test_brand_new: it is new*",
        ]
    )
    # A named test that selection would skip: say why not.
    named = project.run("--testmon-explain", "--testmon-forceselect", "test_calc.py::test_add")
    named.result.stdout.fnmatch_lines(["test_calc.py::test_add: not selected: up to date*"])


def test_explain_names_failed_last_time(project) -> None:
    setup(project)
    project.replace("calc.py", "return a + b", "return a - b")
    project.run()
    run = project.run("--testmon-explain")
    run.result.stdout.fnmatch_lines(["test_calc.py::test_add: it failed last time*"])


def test_verify_reports_a_test_whose_outcome_changed_although_deselected(project) -> None:
    # A dependency no tracer sees: an environment variable read from a file the
    # test does not open itself but a fixture of pytest (monkeypatch) cannot
    # reveal either. Here: a time bomb in the test, flipped by a marker file
    # outside the project root, which is not recorded by design.
    outside = project.path.parent / f"{project.path.name}-flag"
    project.write("calc.py", CALC)
    project.write(
        "test_calc.py",
        f"""
        import os


        def test_flag():
            assert not os.path.exists({str(outside)!r})


        def test_steady():
            assert True
    """,
    )
    project.first_run()
    clean = project.run("--testmon-verify")
    assert clean.ret == 0
    assert "no misses" in clean.text
    outside.write_text("flip")
    try:
        run = project.run("--testmon-verify")
    finally:
        outside.unlink()
    assert run.ran == {"test_calc.py::test_flag", "test_calc.py::test_steady"}
    assert run.ret != 0
    run.result.stdout.fnmatch_lines(
        ["*1 missed*", "MISSED test_calc.py::test_flag: passed -> failed"]
    )


def test_environments_are_kept_apart(project) -> None:
    setup(project)
    # A new environment name knows nothing yet: everything runs and is recorded there.
    assert project.run("--testmon-env", "py-other").ran == ALL
    assert project.run("--testmon-env", "py-other").ran == set()
    project.replace("calc.py", "return a * b", "return b * a")
    assert project.run("--testmon-env", "py-other").ran == {"test_calc.py::test_mul"}
    # The default environment has its own record of the change.
    assert project.run().ran == {"test_calc.py::test_mul"}


def test_ini_option_sets_the_environment(project) -> None:
    setup(project)
    project.write(
        "pytest.ini", "[pytest]\npythonpath = .\ntestmon_env = ci\nmarkers =\n    slow: slow\n"
    )
    run = project.run()
    assert run.ran == ALL  # a fresh data set for 'ci'
    assert project.run().ran == set()


def test_datafile_environment_variable(project, monkeypatch) -> None:
    setup(project)
    monkeypatch.setenv("TESTMON_DATAFILE", str(project.path / "other.db"))
    assert project.run().ran == ALL
    assert (project.path / "other.db").exists()
    assert project.run().ran == set()


def install_fake_distribution(project, version: str) -> None:
    """What `pip install --target site demo-pkg==VERSION` leaves behind: a dist-info."""
    import shutil

    site = project.path / "site"
    shutil.rmtree(site, ignore_errors=True)
    info = site / f"demo_pkg-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: demo-pkg\nVersion: {version}\n")


def test_package_upgrade_is_named_and_reruns_only_its_users(project) -> None:
    project.write("calc.py", CALC)
    project.write("test_calc.py", TESTS)
    project.write("pytest.ini", "[pytest]\npythonpath = . site\nmarkers =\n    slow: slow\n")
    install_fake_distribution(project, "1.0")
    project.first_run()
    assert project.run().ran == set()
    install_fake_distribution(project, "1.1")
    run = project.run()
    assert run.ran == set()  # no test imported or read demo-pkg (test_installed_packages.py)
    assert "environment changed: demo-pkg 1.0 -> 1.1" in run.text
    assert project.run().ran == set()
