"""torch.multiprocessing.spawn: code the spawned ranks run counts for the test that spawned them."""

from __future__ import annotations

import importlib.util
import sys

import pytest

# The `test` extra installs torch==2.13.0 (a CPU wheel) on this Python only.
TORCH_PYTHON = (3, 11)
if sys.version_info[:2] != TORCH_PYTHON:
    pytest.skip(
        "torch==2.13.0 is installed for Python 3.11 only (the `test` extra's marker; "
        "its CPU wheel exists for 3.11 here)",
        allow_module_level=True,
    )

# On 3.11 the `test` extra installs torch: a missing torch is an error, not a skip. It is
# found, not imported: only the pytest runs under test import it (each xdist worker
# would pay a second for it, and torch warns that numpy is missing).
if importlib.util.find_spec("torch") is None:
    raise ImportError("torch is missing: .venv/bin/pip install torch==2.13.0 (the `test` extra)")

from test_children import first_run, run  # noqa: E402

CONFTEST = """
    import os

    os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported, inherited by the ranks
    os.environ["MKL_NUM_THREADS"] = "1"
"""

WORK = """
    import torch


    def scale(rank):
        return float((torch.ones(2) * (rank + 1)).sum())


    def shift(rank):
        return float((torch.zeros(2) + rank).sum())


    def run_scale(rank):
        torch.set_num_threads(1)
        assert scale(rank) == 2.0 * (rank + 1)


    def run_shift(rank):
        torch.set_num_threads(1)
        assert shift(rank) == 2.0 * rank
"""

TESTS = """
    import torch.multiprocessing as tmp

    import work


    def test_scale():
        tmp.spawn(work.run_scale, nprocs=2, join=True)


    def test_shift():
        tmp.spawn(work.run_shift, nprocs=2, join=True)
"""


@pytest.mark.torch
@pytest.mark.slow
def test_torch_spawn_ranks_are_recorded(project) -> None:
    project.write("conftest.py", CONFTEST)
    project.write("work.py", WORK)
    project.write("test_torch_kids.py", TESTS)
    first = first_run(project)
    assert len(first.ran) == 2
    assert run(project).ran == set()

    project.replace(
        "work.py", "(torch.ones(2) * (rank + 1)).sum()", "(torch.ones(2) * (rank + 1)).sum().item()"
    )
    result = run(project)
    assert result.ran == {"test_torch_kids.py::test_scale"}, result.text
    assert result.ret == 0

    project.replace(
        "work.py", "(torch.zeros(2) + rank).sum()", "(torch.zeros(2) + rank).sum().item()"
    )
    result = run(project)
    assert result.ran == {"test_torch_kids.py::test_shift"}, result.text
