"""Generate the benchmark sample projects deterministically into bench/.work/<name>/.

Two projects:

* ``small``: a realistic shop-like package of 20 modules (classes, functions
  calling each other, module constants imported across modules) with 300 tests
  in 25 files, a conftest with session and function fixtures, parametrized
  tests and tests that read a JSON data file.
* ``large``: 1,000 source modules and 1,000 test files of 20 tests each
  (20,000 tests); every test calls a couple of source functions.

Each project gets a ``pytest.ini`` with ``pythonpath = .`` and an ``EditSpec``
describing a one-function-body edit that a handful of tests execute.

Usage: ``python bench/gen_projects.py [small|large ...] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / ".work"
GENERATOR_VERSION = "2"  # bump when the generated code changes

PYTEST_INI = """[pytest]
pythonpath = .
testpaths = tests
"""


@dataclass(frozen=True)
class EditSpec:
    """A body edit of one source function: replace ``marker`` with ``variant(i)``."""

    path: str  # relative to the project root
    function: str
    marker: str  # text present exactly once in the original file
    template: str  # format string with {n}; n = 1, 2, 3... gives distinct edits
    expected_selected: int  # tests that execute the function (by construction)

    def variant(self, n: int) -> str:
        """Return the replacement text for the n-th edit (n >= 1)."""
        return self.template.format(n=n)


@dataclass(frozen=True)
class ProjectInfo:
    """What was generated: where, how many tests, and which edit to make."""

    name: str
    root: str
    tests: int
    test_files: int
    source_modules: int
    edit: EditSpec


# ---------------------------------------------------------------- small project

SMALL_MODULES = [
    "config",
    "money",
    "units",
    "text",
    "dates",
    "validation",
    "catalog",
    "inventory",
    "pricing",
    "discounts",
    "tax",
    "shipping",
    "cart",
    "customers",
    "loyalty",
    "payments",
    "orders",
    "invoices",
    "reports",
    "search",
]
VERBS = ["compute", "normalize", "score", "merge", "estimate", "lookup", "render", "audit"]
SMALL_EDIT_MODULE = 18  # "reports": only test file 18's parametrized test calls its leaf


def _small_module(i: int, rng: random.Random) -> str:
    """Source for shop/<SMALL_MODULES[i]>.py."""
    name = SMALL_MODULES[i]
    if i == 0:
        return (
            '"""Shop-wide settings."""\n\n'
            "LIMIT = 10007\n"
            "DEFAULT_CURRENCY = 'EUR'\n"
            "ROUNDS = 40\n"
            "FEATURES = {'loyalty': True, 'express': False}\n"
        )
    deps = sorted(rng.sample(range(1, i), k=min(2, i - 1))) if i > 1 else []
    lines = [f'"""The {name} part of the shop."""', ""]
    lines.append("from shop.config import LIMIT, ROUNDS")
    lines += [f"from shop import {SMALL_MODULES[d]}" for d in deps]
    lines += ["", f"RATE = {rng.randint(3, 97)}", f"OFFSET = {rng.randint(1, 50)}", ""]
    verbs = rng.sample(VERBS, 4)
    fnames = [f"{v}_{name}" for v in verbs]
    for j, fn in enumerate(fnames):
        lines += ["", ""] if j else [""]
        lines.append(f"def {fn}(value: int) -> int:")
        lines.append(f'    """{fn.replace("_", " ").capitalize()} for a value."""')
        lines.append("    acc = value + OFFSET")
        lines.append("    for step in range(ROUNDS):")
        lines.append("        acc = (acc * RATE + step) % LIMIT")
        if j < 3 and deps:
            d = rng.choice(deps)
            lines.append(f"    acc = (acc + {SMALL_MODULES[d]}.helper(acc % 97)) % LIMIT")
        if j == 1:
            lines.append(f"    acc = (acc + {fnames[0]}(acc % 13)) % LIMIT")
        if j == 3:
            lines.append("    acc = (acc + 0) % LIMIT  # leaf: only tests call this")
        lines.append("    return acc")
    lines += [
        "",
        "",
        "def helper(value: int) -> int:",
        '    """Small shared helper other modules call."""',
        "    return (value * RATE + OFFSET) % LIMIT",
        "",
        "",
        f"class {name.capitalize()}Record:",
        f'    """A {name} record holding a value."""',
        "",
        "    retries = 3",
        "",
        "    def __init__(self, value: int) -> None:",
        "        self.value = value",
        "        self.history: list[int] = []",
        "",
        "    def total(self) -> int:",
        '        """Total of the record."""',
        f"        result = {fnames[0]}(self.value)",
        "        self.history.append(result)",
        "        return result",
        "",
        "    def scaled(self, factor: int) -> int:",
        '        """Total scaled by a factor."""',
        f"        return ({fnames[2]}(self.value) * factor * self.retries) % LIMIT",
        "",
    ]
    return "\n".join(lines)


def _small_fnames(i: int) -> list[str]:
    """Replay the generator's choice of function names for module i."""
    rng = random.Random(1000 + i)
    if i == 0:
        return []
    if i > 1:
        rng.sample(range(1, i), k=min(2, i - 1))
    rng.randint(3, 97)
    rng.randint(1, 50)
    return [f"{v}_{SMALL_MODULES[i]}" for v in rng.sample(VERBS, 4)]


def _small_target(k: int) -> int:
    """Index of the module that test file k exercises (only file 17 hits module 18)."""
    return 1 + k % (len(SMALL_MODULES) - 1)


SMALL_CONFTEST = '''"""Shared fixtures for the shop tests."""

import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "cases.json"


@pytest.fixture(scope="session")
def cases() -> dict:
    """Test cases loaded once per session from the JSON data file."""
    with open(DATA, encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture
def seed_value(request) -> int:
    """A per-test value derived from the test name."""
    return sum(map(ord, request.node.name)) % 500
'''


def _small_test_file(k: int, rng: random.Random) -> str:
    """Source for tests/test_<k>_<module>.py: exactly 12 tests."""
    i = _small_target(k)
    mod = SMALL_MODULES[i]
    fnames = _small_fnames(i)
    other = SMALL_MODULES[rng.randint(1, len(SMALL_MODULES) - 1)]
    ofn = _small_fnames(SMALL_MODULES.index(other))
    cls = f"{mod.capitalize()}Record"
    out = [
        f'"""Tests for shop.{mod}."""',
        "",
        "import json",
        "from pathlib import Path",
        "",
        "import pytest",
        "",
        f"from shop import {mod}" + (f", {other}" if other != mod else ""),
        "from shop.config import LIMIT",
        "",
    ]
    for t in range(5):  # 5 plain tests
        fn = fnames[t % 3]
        arg = rng.randint(0, 1000)
        out += [
            "",
            "",
            f"def test_{fn}_{t}() -> None:",
            f"    result = {mod}.{fn}({arg})",
            "    assert 0 <= result < LIMIT",
        ]
        if t == 4:
            out.append(f"    assert {other}.{ofn[0]}(result) >= 0")
    params = ", ".join(str(rng.randint(0, 500)) for _ in range(4))
    out += [
        "",
        "",
        f'@pytest.mark.parametrize("value", [{params}])',
        f"def test_{fnames[3]}_param(value: int) -> None:",
        f"    assert 0 <= {mod}.{fnames[3]}(value) < LIMIT",
    ]  # 4 tests
    out += [
        "",
        "",
        f"class Test{cls}:",
        "    def test_total_and_scaled(self) -> None:",
        f"        rec = {mod}.{cls}({rng.randint(1, 99)})",
        "        assert rec.total() == rec.history[-1]",
        "        assert 0 <= rec.scaled(2) < LIMIT",
    ]
    out += [
        "",
        "",
        "def test_cases_from_session_fixture(cases: dict) -> None:",
        f"    for value in cases['{mod}']:",
        f"        assert 0 <= {mod}.{fnames[0]}(value) < LIMIT",
    ]
    out += [
        "",
        "",
        "def test_reads_json_directly(seed_value: int) -> None:",
        "    path = Path(__file__).parent / 'data' / 'cases.json'",
        "    data = json.loads(path.read_text(encoding='utf-8'))",
        f"    assert 0 <= {mod}.{fnames[1]}(data['{mod}'][0] + seed_value) < LIMIT",
        "",
    ]
    return "\n".join(out)


def generate_small(root: Path) -> ProjectInfo:
    """Write the small realistic project under root."""
    pkg = root / "shop"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""A small shop used to benchmark test selection."""\n')
    for i, name in enumerate(SMALL_MODULES):
        (pkg / f"{name}.py").write_text(_small_module(i, random.Random(1000 + i)))
    tests = root / "tests"
    (tests / "data").mkdir(parents=True)
    rng = random.Random(42)
    data = {m: [rng.randint(0, 999) for _ in range(5)] for m in SMALL_MODULES}
    (tests / "data" / "cases.json").write_text(json.dumps(data, indent=1) + "\n")
    (tests / "conftest.py").write_text(SMALL_CONFTEST)
    n_files = 25
    for k in range(n_files):
        mod = SMALL_MODULES[_small_target(k)]
        (tests / f"test_{k:02d}_{mod}.py").write_text(_small_test_file(k, random.Random(k)))
    (root / "pytest.ini").write_text(PYTEST_INI)
    target = _small_fnames(SMALL_EDIT_MODULE)[3]
    edit = EditSpec(
        path=f"shop/{SMALL_MODULES[SMALL_EDIT_MODULE]}.py",
        function=target,
        marker="acc = (acc + 0) % LIMIT  # leaf: only tests call this",
        template="acc = (acc + {n} - {n}) % LIMIT  # leaf: only tests call this",
        expected_selected=4,
    )
    return ProjectInfo("small", str(root), 300, n_files, len(SMALL_MODULES), edit)


# ---------------------------------------------------------------- large project

LARGE_MODULES = 1000
LARGE_TESTS_PER_FILE = 20
LARGE_EDIT_MODULE = 500
LARGE_LEAF_TESTS = 5  # tests 0..4 of each file call the module's leaf()


def _large_module(i: int, rng: random.Random) -> str:
    """Source for big/m<i>.py: three chained functions, a leaf and a class."""
    dep = rng.randrange(i) if i else None
    lines = [f'"""Generated module {i}."""', ""]
    if dep is not None:
        lines += [f"from big import m{dep:04d}", ""]
    lines += [f"FACTOR = {rng.randint(2, 50)}", "", ""]
    lines += [
        "def base(x: int) -> int:",
        "    total = x",
        "    for k in range(8):",
        "        total = (total * FACTOR + k) % 9973",
        "    return total",
        "",
        "",
    ]
    lines += ["def step(x: int) -> int:", "    return (base(x) + FACTOR) % 9973", "", ""]
    call = f"m{dep:04d}.base(x)" if dep is not None else "base(x)"
    lines += ["def combine(x: int) -> int:", f"    return (step(x) + {call}) % 9973", "", ""]
    lines += [
        "def leaf(x: int) -> int:",
        "    value = x * FACTOR",
        "    value = value + 0  # leaf body",
        "    return value % 9973",
        "",
        "",
    ]
    lines += [
        "class Box:",
        "    def __init__(self, x: int) -> None:",
        "        self.x = x",
        "",
        "    def size(self) -> int:",
        "        return step(self.x)",
        "",
    ]
    return "\n".join(lines)


def _large_test_file(i: int, rng: random.Random) -> str:
    """Source for tests/test_m<i>.py with LARGE_TESTS_PER_FILE tests."""
    other = rng.randrange(LARGE_MODULES)
    out = [f"from big import m{i:04d} as mod", f"from big import m{other:04d} as other"]
    for t in range(LARGE_TESTS_PER_FILE):
        x = rng.randint(0, 999)
        out += ["", "", f"def test_{t:02d}() -> None:"]
        if t < LARGE_LEAF_TESTS:
            out.append(f"    assert 0 <= mod.leaf({x}) < 9973")
        elif t % 4 == 1:
            out.append(f"    assert mod.Box({x}).size() == mod.step({x})")
        elif t % 4 == 2:
            out.append(f"    assert 0 <= mod.combine({x}) + other.base({x}) < 2 * 9973")
        else:
            out.append(f"    assert 0 <= mod.step({x}) < 9973")
    return "\n".join(out) + "\n"


def generate_large(root: Path) -> ProjectInfo:
    """Write the large generated project under root."""
    pkg = root / "big"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for i in range(LARGE_MODULES):
        (pkg / f"m{i:04d}.py").write_text(_large_module(i, random.Random(i)))
    tests = root / "tests"
    tests.mkdir()
    (tests / "conftest.py").write_text(
        "import pytest\n\n\n@pytest.fixture\ndef small_value() -> int:\n    return 7\n"
    )
    for i in range(LARGE_MODULES):
        (tests / f"test_m{i:04d}.py").write_text(_large_test_file(i, random.Random(10_000 + i)))
    (root / "pytest.ini").write_text(PYTEST_INI)
    edit = EditSpec(
        path=f"big/m{LARGE_EDIT_MODULE:04d}.py",
        function="leaf",
        marker="value = value + 0  # leaf body",
        template="value = value + {n} - {n}  # leaf body",
        expected_selected=LARGE_LEAF_TESTS,
    )
    return ProjectInfo(
        "large", str(root), LARGE_MODULES * LARGE_TESTS_PER_FILE, LARGE_MODULES, LARGE_MODULES, edit
    )


GENERATORS = {"small": generate_small, "large": generate_large}


def generate(name: str, out_dir: Path = WORK_DIR) -> ProjectInfo:
    """(Re)generate project ``name`` under out_dir/name unless an up-to-date copy exists."""
    root = out_dir / name
    stamp = root / ".bench-project.json"
    if stamp.exists():
        info = json.loads(stamp.read_text())
        if info.get("generator_version") == GENERATOR_VERSION:
            info.pop("generator_version")
            info["edit"] = EditSpec(**info["edit"])
            return ProjectInfo(**info)
    if root.exists():
        shutil.rmtree(root)
    info_obj = GENERATORS[name](root)
    stamp.write_text(
        json.dumps({**asdict(info_obj), "generator_version": GENERATOR_VERSION}, indent=1)
    )
    return info_obj


def main() -> None:
    """Command line: generate the named projects (default: both)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="small and/or large (default: both)")
    parser.add_argument("--out", type=Path, default=WORK_DIR)
    args = parser.parse_args()
    for name in args.names or list(GENERATORS):
        info = generate(name, args.out)
        print(f"{info.name}: {info.tests} tests in {info.test_files} files -> {info.root}")


if __name__ == "__main__":
    main()
