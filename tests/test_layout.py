"""Architecture checks: the import direction between layers, and module docstrings."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO / "testmon_watch"

# Third-party front-end/runner packages that the lower layers must never pull in.
FRONT_END_PACKAGES = ("pytest", "_pytest", "textual", "watchdog")

# For each layer: the testmon_watch subpackages/modules it must not import (directly or not).
FORBIDDEN_INTERNAL = {
    "core": (
        "measure",
        "pytest_plugin",
        "worker",
        "watch",
        "session",
        "headless",
        "ui",
        "cli",
    ),
    "measure": ("pytest_plugin", "worker", "watch", "session", "headless", "ui", "cli"),
}


def discover_modules(layer: str) -> list[str]:
    """Dotted names of the layer's package and every module below it, found on disk."""
    root = PACKAGE_DIR / layer
    if not (root / "__init__.py").exists():
        return []
    names = [f"testmon_watch.{layer}"]

    def walk(path: Path, prefix: str) -> None:
        for info in pkgutil.iter_modules([str(path)]):
            name = f"{prefix}.{info.name}"
            names.append(name)
            if info.ispkg:
                walk(path / info.name, name)

    walk(root, f"testmon_watch.{layer}")
    return sorted(names)


def forbidden_prefixes(layer: str) -> tuple[str, ...]:
    return FRONT_END_PACKAGES + tuple(f"testmon_watch.{n}" for n in FORBIDDEN_INTERNAL[layer])


PROBE = """
import importlib, json, sys
before = set(sys.modules)
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def modules_loaded_by(names: list[str]) -> set[str]:
    """Modules a fresh interpreter loads while importing `names`, beyond its own start-up."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *names],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"importing {names} failed:\n{result.stderr}"
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return set(loaded)


def offenders(loaded: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == p or m.startswith(p + ".") for p in prefixes))


LAYER_MODULES = [(layer, name) for layer in FORBIDDEN_INTERNAL for name in discover_modules(layer)]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN_INTERNAL))
def test_layer_as_a_whole_respects_import_direction(layer: str) -> None:
    names = discover_modules(layer)
    if not names:
        pytest.skip(f"testmon_watch.{layer} does not exist yet")
    bad = offenders(modules_loaded_by(names), forbidden_prefixes(layer))
    assert not bad, f"importing all of testmon_watch.{layer} pulled in: {bad}"


@pytest.mark.parametrize(("layer", "module"), LAYER_MODULES, ids=[m for _, m in LAYER_MODULES])
def test_each_module_respects_import_direction(layer: str, module: str) -> None:
    bad = offenders(modules_loaded_by([module]), forbidden_prefixes(layer))
    assert not bad, f"importing {module} pulled in: {bad}"


def test_probe_detects_a_forbidden_import() -> None:
    """Guards the check itself: a module known to import pytest must be caught."""
    assert offenders(modules_loaded_by(["pytest"]), FRONT_END_PACKAGES)


ALL_SOURCE_FILES = sorted(PACKAGE_DIR.rglob("*.py"))


def docstring_problem(path: Path) -> str | None:
    """Why the module's docstring does not open with a one-line sentence, or None."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    doc = ast.get_docstring(tree, clean=True)
    if not doc:
        return "no module docstring"
    lines = doc.splitlines()
    first = lines[0].strip()
    if not first:
        return "the docstring's first line is empty"
    if len(first.split()) < 3:
        return f"first line is not a sentence: {first!r}"
    if first[-1] not in ".!?":
        return f"first line does not end like a sentence: {first!r}"
    if len(lines) > 1 and lines[1].strip():
        return "the summary line must be followed by a blank line"
    return None


@pytest.mark.parametrize(
    "path", ALL_SOURCE_FILES, ids=[str(p.relative_to(REPO)) for p in ALL_SOURCE_FILES]
)
def test_module_docstring_opens_with_a_sentence(path: Path) -> None:
    problem = docstring_problem(path)
    assert problem is None, f"{path.relative_to(REPO)}: {problem}"
