"""Sample projects for the watch-loop benchmark and the one-function edit made on each save.

* ``small``: bench/gen_projects.py's small project (300 tests in 25 files); the
  edit is its leaf function, which 4 parametrized tests execute.
* ``torch``: a dedicated project whose package and 6 test files ``import torch``
  and do tiny CPU tensor ops (36 tests); the edit is a function 3 tests execute.

``Edit.save(i)`` writes one of two versions of the function body, alternating
(their lengths differ, so Python's size+mtime .pyc check cannot serve stale
bytecode); ``Edit.save_new()`` a version no earlier save of this bench process
wrote, nor (but by a one in 10^5 chance) an earlier bench run: as a developer's edit,
never found compiled or parsed already by a cache keyed by content;
``Edit.save_unique(n)`` the n-th distinct version of the memory phase.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gen_projects

WORK_DIR = Path(__file__).resolve().parent / ".work"
TORCH_VERSION = "1"  # bump when the generated torch project changes


@dataclass(frozen=True)
class Project:
    """A generated template project and the body edit made on each save."""

    name: str
    root: str
    tests: int
    edit_path: str  # relative to the root
    version_a: str  # present exactly once in the original file
    version_b: str  # the other body version (different length)
    unique_template: str  # format string with {n}: distinct versions for the memory phase
    expected_selected: int  # tests that execute the edited function


# Numbers for Edit.save_new: a range of this process's own (the memory phase writes
# 1000 + n); every edit template keeps its body's result exact whatever the number.
_NEW_VERSIONS = itertools.count(random.randrange(1, 100_000) * 1000 + 100_000_000)


class Edit:
    """Saves of one function body in a project copy, written in place like most editors do."""

    def __init__(self, project: Project, root: Path) -> None:
        self.path = root / project.edit_path
        self.project = project
        self.original = self.path.read_text(encoding="utf-8")
        if self.original.count(project.version_a) != 1:
            raise RuntimeError(f"edit marker not found exactly once in {self.path}")
        self.current = project.version_a

    def _write(self, body: str) -> float:
        text = self.original.replace(self.project.version_a, body)
        with open(self.path, "w", encoding="utf-8") as fh:
            fh.write(text)
        now = time.monotonic()
        self.current = body
        return now

    def save(self, i: int) -> float:
        """Write version b for odd i, a for even i; returns time.monotonic() right after."""
        return self._write(self.project.version_b if i % 2 else self.project.version_a)

    def save_new(self) -> float:
        """Write a version no earlier save wrote (see the module docstring)."""
        return self._write(self.project.unique_template.format(n=next(_NEW_VERSIONS)))

    def save_unique(self, n: int) -> float:
        """Write the n-th distinct version (never equal to a, b or another n)."""
        return self._write(self.project.unique_template.format(n=n + 1000))


def small() -> Project:
    info = gen_projects.generate("small")
    edit = info.edit
    return Project(
        name="small",
        root=info.root,
        tests=info.tests,
        edit_path=edit.path,
        version_a=edit.marker,
        version_b=edit.variant(1),
        unique_template=edit.template,
        expected_selected=edit.expected_selected,
    )


TORCH_PYTEST_INI = """[pytest]
pythonpath = .
testpaths = tests
"""

TORCH_MODULE = '''"""Tiny tensor helpers the torch tests exercise."""

import torch


def ramp(n: int) -> torch.Tensor:
    """0, 1, ..., n-1 as floats."""
    return torch.arange(n, dtype=torch.float32)


def scale(t: torch.Tensor, k: float) -> torch.Tensor:
    """t times k."""
    return t * k


def normalize(t: torch.Tensor) -> torch.Tensor:
    """t divided by its sum (zeros stay zeros)."""
    total = t.sum()
    return t / total if total != 0 else t


def gram(n: int) -> torch.Tensor:
    """A small symmetric matrix."""
    m = torch.ones(n, n) + torch.eye(n)
    return m @ m.T


def blend(t: torch.Tensor) -> torch.Tensor:
    """The edited function: only the blend tests execute it."""
    out = t.clone()
    out = out + 0.0  # blend body
    return out
'''


def _torch_test_file(k: int) -> str:
    lines = [
        f'"""Torch tests, file {k}."""',
        "",
        "import torch",
        "",
        "from tproj import tensors",
        "",
    ]
    for t in range(6):
        n = 3 + (k + t) % 5
        lines += ["", f"def test_t{k}_{t}() -> None:"]
        if k == 0 and t < 3:
            lines += [
                f"    out = tensors.blend(tensors.ramp({n}))",
                f"    assert torch.equal(out, tensors.ramp({n}))",
            ]
        elif t % 3 == 0:
            lines += [
                f"    r = tensors.scale(tensors.ramp({n}), {k + 2})",
                f"    assert r.shape == ({n},)",
                f"    assert float(r[-1]) == {(n - 1) * (k + 2)}.0",
            ]
        elif t % 3 == 1:
            lines += [
                f"    p = tensors.normalize(tensors.ramp({n}) + 1)",
                "    assert torch.isclose(p.sum(), torch.tensor(1.0))",
            ]
        else:
            lines += [
                f"    g = tensors.gram({n})",
                "    assert torch.equal(g, g.T)",
                f"    assert g.shape == ({n}, {n})",
            ]
        lines.append("")
    return "\n".join(lines)


def torch_project(out_dir: Path = WORK_DIR) -> Project:
    """(Re)generate the torch project under out_dir/watch-torch unless up to date."""
    root = out_dir / "watch-torch"
    stamp = root / ".bench-project.json"
    n_files = 6
    project = Project(
        name="torch",
        root=str(root),
        tests=6 * n_files,
        edit_path="tproj/tensors.py",
        version_a="out = out + 0.0  # blend body",
        version_b="out = out + 1.0 - 1.0  # blend body",
        # (n - n) first: exact whatever n is, in float32 too.
        unique_template="out = out + ({n} - {n})  # blend body",
        expected_selected=3,
    )
    if stamp.exists():
        try:
            if json.loads(stamp.read_text()) == {**asdict(project), "version": TORCH_VERSION}:
                return project
        except json.JSONDecodeError:
            pass
    if root.exists():
        shutil.rmtree(root)
    (root / "tproj").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pytest.ini").write_text(TORCH_PYTEST_INI)
    (root / "tproj" / "__init__.py").write_text('"""Torch sample project."""\n')
    (root / "tproj" / "tensors.py").write_text(TORCH_MODULE)
    for k in range(n_files):
        (root / "tests" / f"test_torch_{k}.py").write_text(_torch_test_file(k))
    stamp.write_text(json.dumps({**asdict(project), "version": TORCH_VERSION}, indent=1))
    return project


PROJECTS = {"small": small, "torch": torch_project}


def fresh_copy(project: Project, dst: Path) -> Path:
    """A clean copy of the template (no testmon data, caches or stamps)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(
        project.root,
        dst,
        ignore=shutil.ignore_patterns(".pytest_cache", ".testmondata*", ".bench-*", "__pycache__"),
    )
    return dst
