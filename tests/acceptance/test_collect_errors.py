"""A collection error reads under `pytest --testmon` as under plain pytest (#12).

The plugin wraps `importlib.import_module` (pytest imports test modules with
it) and the loaders' `exec_module`; their frames must not show in the error,
nor keep CPython from trimming its `<frozen importlib._bootstrap*>` frames.
"""

from __future__ import annotations

import re
import sys

import pytest

# Each case: the files that make collecting test_a.py fail.
CASES: dict[str, dict[str, str]] = {
    "syntax error in the test module": {
        "test_a.py": "def test_a(:\n    pass\n",
    },
    "syntax error in a module it imports": {
        "calc.py": "def add(a, b:\n    return a + b\n",
        "test_a.py": "import calc\n\n\ndef test_a():\n    assert calc.add(1, 2) == 3\n",
    },
    "NameError at the test module's top level": {
        "test_a.py": "x = undefined_name\n\n\ndef test_a():\n    pass\n",
    },
    "NameError at the top level of a module it imports": {
        "calc.py": "x = undefined_name\n",
        "test_a.py": "import calc\n\n\ndef test_a():\n    pass\n",
    },
    "ImportError (module not found)": {
        "test_a.py": "import not_a_module_anywhere\n\n\ndef test_a():\n    pass\n",
    },
}

# 3.10 re-raises the traceback a handler saved, so a wrapper cannot drop its
# own frame there (testmon_watch/measure/frames.py): our frames still show.
# 3.10 re-raises the traceback saved when a handler starts: our wrappers cannot
# unlink their frames there, only pass for importlib's (measure/frames.py), which
# a SyntaxError, shown unfiltered, prints as `???` lines.
SAME_LINES = sys.version_info >= (3, 11)

SECTION = re.compile(r"^=+ ERRORS =+$(.*?)^=+ short test summary info =+$", re.M | re.S)
SUMMARY_LINE = re.compile(r"^ERROR test_a\.py.*$", re.M)


def error_section(text: str) -> str:
    """The ERRORS section and the summary's ERROR line; nothing else differs by design."""
    match = SECTION.search(text)
    assert match, text
    return match.group(1) + "\n".join(SUMMARY_LINE.findall(text))


def assert_reads_as_plain(project) -> None:
    plain = project.run(testmon=False)
    ours = project.run()
    assert plain.ret == ours.ret == 2, ours.text
    section = error_section(ours.text)
    assert "testmon_watch" not in section
    # Same lines: no frame of ours, no importlib frame we kept CPython from trimming.
    if SAME_LINES:
        assert section.splitlines() == error_section(plain.text).splitlines()


@pytest.mark.parametrize("case", CASES)
def test_collection_error_reads_as_without_the_plugin(project, case) -> None:
    for relpath, text in CASES[case].items():
        project.write(relpath, text)
    assert_reads_as_plain(project)


def test_collection_error_after_a_recorded_run_reads_as_without_the_plugin(project) -> None:
    project.write("calc.py", "def add(a, b):\n    return a + b\n")
    project.write("test_a.py", "import calc\n\n\ndef test_a():\n    assert calc.add(1, 2) == 3\n")
    project.first_run()
    project.write("calc.py", "def add(a, b:\n    return a + b\n")
    assert_reads_as_plain(project)
    # Still recorded: fixing calc.py runs test_a again, and then nothing.
    project.write("calc.py", "def add(a, b):\n    return a + b\n")
    assert project.run().ran == {"test_a.py::test_a"}
    assert project.run().ran == set()
