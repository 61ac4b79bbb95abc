"""Architecture checks: every layer's import direction, package folders, module docstrings.

Each contract names a set of modules and what they must never load, directly or
through anything they import. A fresh interpreter imports the modules and the
test reads `sys.modules` (as harlequin does), so an import hidden three modules
deep is caught as surely as one at the top of the file. Lazy imports inside
functions are not seen here; the front end's are checked by running the app
(tests/ui/test_front_end_imports.py).
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO / "testmon_watch"
PACKAGE = "testmon_watch"

RUNNER = ("pytest", "_pytest", "pluggy", "coverage")
TERMINAL = ("textual", "rich", "watchdog")


def ours(*names: str) -> tuple[str, ...]:
    return tuple(f"{PACKAGE}.{name}" for name in names)


# Above the core, bottom to top. Each contract forbids what lies above its layer.
LAYERS_ABOVE_CORE = ours(
    "wire",
    "paths",
    "config",
    "wording",
    "measure",
    "pytest_plugin",
    "worker",
    "watch",
    "session",
    "headless",
    "coverage_client",
    "ui",
    "combine",
    "cli",
)
LIGHT_CORE = ours("core.outcomes", "core.keys", "core.reasons", "core.runs", "core.records")
WORKER_ENGINE = ours(
    *(
        f"worker.{name}"
        for name in (
            "server",
            "supervisor",
            "child",
            "streamer",
            "standby",
            "code_cache",
            "preload",
            "fingerprint",
        )
    )
)
WORKER_CLIENT = ours("worker.client", "worker.processes")
# The front-end process (the app, --no-tui) runs none of the engine's code.
FRONT_END_FORBIDDEN = (*RUNNER, *ours("measure", "pytest_plugin"), *WORKER_ENGINE)


def above(*layers: str) -> tuple[str, ...]:
    """The layers above the last of `layers` in LAYERS_ABOVE_CORE."""
    last = max(LAYERS_ABOVE_CORE.index(f"{PACKAGE}.{name}") for name in layers)
    return LAYERS_ABOVE_CORE[last + 1 :]


@dataclass(frozen=True)
class Contract:
    """`modules` (a package means it and every module below it) never load `forbidden`."""

    name: str
    modules: tuple[str, ...]
    forbidden: tuple[str, ...]
    why: str


CONTRACTS = (
    Contract(
        "core is the pure engine",
        ours("core"),
        (*RUNNER, *TERMINAL, "subprocess", *LAYERS_ABOVE_CORE),
        "core runs in every process and is unit-tested alone; it starts no process",
    ),
    Contract(
        "light core has no database",
        LIGHT_CORE,
        ("sqlite3", *ours("core.db")),
        "the front end and every recorded child import these types",
    ),
    Contract(
        "wire only turns values into bytes and back",
        ours("wire"),
        (*RUNNER, *TERMINAL, *above("wire")),
        "every process reads the formats; none may pull in another layer",
    ),
    Contract(
        "paths, config and wording are leaves",
        ours("paths", "config", "wording"),
        (*RUNNER, *TERMINAL, "sqlite3", *ours("core.db", "wire"), *above("wording")),
        "every layer may use them",
    ),
    Contract(
        "measure records, and needs no pytest",
        ours("measure"),
        ("pytest", "_pytest", *TERMINAL, *ours("wording"), *above("measure")),
        "recorded child processes load it without pytest",
    ),
    Contract(
        "the plugin knows no worker and no front end",
        ours("pytest_plugin"),
        (*TERMINAL, *above("pytest_plugin")),
        "pytest --testmon runs without the app",
    ),
    Contract(
        "pytest's entry module loads only what adds the options",
        ours("pytest_plugin.plugin"),
        (
            "sqlite3",
            *ours("core.db", "core.environment", "core.reasons", "core.selection", "measure"),
            *ours("wire", "paths", "wording", "pytest_plugin.fast_path", "pytest_plugin.planning"),
            *ours("pytest_plugin.results", "pytest_plugin.session_state"),
        ),
        "pytest imports it in every run, --testmon or not; a first run never needs the fast path",
    ),
    Contract(
        "the worker's engine side knows no front end",
        WORKER_ENGINE,
        (*TERMINAL, *ours("worker.client"), *above("worker")),
        "the worker runs pytest; the front end talks to it only through the protocol",
    ),
    Contract(
        "the worker client runs in the front-end process",
        WORKER_CLIENT,
        (*FRONT_END_FORBIDDEN, "sqlite3", *ours("core.db"), *TERMINAL, *above("worker")),
        "the front-end process never imports pytest, coverage or the project",
    ),
    Contract(
        "the watcher only watches",
        ours("watch"),
        (*FRONT_END_FORBIDDEN, "textual", *ours("worker"), *above("watch")),
        "file events in, change batches out",
    ),
    Contract(
        "the session and the headless printer are front end",
        ours("session", "headless"),
        (*FRONT_END_FORBIDDEN, "textual", *ours("coverage_client", "ui", "cli")),
        "the front-end process never imports pytest, coverage or the project",
    ),
    Contract(
        "the coverage client only starts the coverage job",
        ours("coverage_client"),
        (*FRONT_END_FORBIDDEN, "sqlite3", *ours("core.db"), *TERMINAL, *above("coverage_client")),
        "the job runs coverage.py in a child process",
    ),
    Contract(
        "the app reads no database and runs no engine code",
        ours("ui"),
        (*FRONT_END_FORBIDDEN, *ours("core.db", "headless", "cli")),
        "what the app shows comes from the session's events and the coverage job",
    ),
    Contract(
        "combine merges data files with the engine alone",
        ours("combine"),
        (*RUNNER, *TERMINAL, *ours("ui", "worker", "session", "measure", "pytest_plugin")),
        "it runs no test and shows no app",
    ),
    Contract(
        "the command line starts light",
        ours("cli"),
        (*RUNNER, *TERMINAL, *ours("ui", "worker", "session", "measure", "pytest_plugin")),
        "it picks a front end before importing one",
    ),
)


def expand(name: str) -> list[str]:
    """`name` and, for a package, every module below it, found on disk."""
    parts = name.split(".")
    path = REPO.joinpath(*parts)
    if (path / "__init__.py").is_file():
        names = [name]
        names += [info.name for info in pkgutil.walk_packages([str(path)], prefix=f"{name}.")]
        return sorted(names)
    if path.with_suffix(".py").is_file():
        return [name]
    return []


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


CASES = [(c, m) for c in CONTRACTS for name in c.modules for m in expand(name)]


def test_every_contract_names_existing_modules() -> None:
    for contract in CONTRACTS:
        for name in contract.modules:
            assert expand(name), f"{contract.name}: no module {name}"


@pytest.mark.parametrize(("contract", "module"), CASES, ids=[m for _, m in CASES])
def test_module_keeps_its_contract(contract: Contract, module: str) -> None:
    bad = offenders(modules_loaded_by([module]), contract.forbidden)
    assert not bad, f"{module} ({contract.name}: {contract.why}) pulled in: {bad}"


def test_probe_detects_a_forbidden_import() -> None:
    """Guards the check itself: a module known to import pytest must be caught."""
    assert offenders(modules_loaded_by(["testmon_watch.pytest_plugin.planning"]), RUNNER)


def test_every_package_folder_is_a_package() -> None:
    """A folder of modules without __init__.py escapes module discovery, so every check."""
    missing = sorted(
        str(folder.relative_to(REPO))
        for folder in {p.parent for p in PACKAGE_DIR.rglob("*.py")}
        if not (folder / "__init__.py").is_file()
    )
    assert not missing, f"package folders without __init__.py: {missing}"


def test_every_module_is_under_some_contract() -> None:
    covered = {m for _, m in CASES}
    # sitecustomize runs only as a child interpreter's start-up file (measure's contract
    # covers what it imports); the package itself holds nothing.
    exempt = {PACKAGE, *ours("measure.child_boot.sitecustomize", "worker")}
    uncovered = sorted(set(expand(PACKAGE)) - covered - exempt)
    assert not uncovered, f"modules no contract checks: {uncovered}"


ALL_SOURCE_FILES = sorted(PACKAGE_DIR.rglob("*.py"))


def direct_imports(path: Path) -> set[str]:
    """Modules a file imports itself (at any depth of its code), as dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


# Where English sentences for people may be made from typed values (wording.py): only
# where people read them. The engine, the wire and the worker carry typed values.
WORDING_USERS = ("pytest_plugin", "headless.py", "ui")


def test_only_the_edges_word_typed_facts() -> None:
    assert f"{PACKAGE}.wording" in direct_imports(PACKAGE_DIR / "headless.py")  # the scan works
    speakers = sorted(
        str(path.relative_to(PACKAGE_DIR))
        for path in ALL_SOURCE_FILES
        if f"{PACKAGE}.wording" in direct_imports(path)
        and not str(path.relative_to(PACKAGE_DIR)).startswith(WORDING_USERS)
    )
    assert not speakers, f"modules that make English from typed facts: {speakers}"


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


def class_sizes() -> list[tuple[str, int, str]]:
    """(where, lines, docstring) of every class in the package."""
    found = []
    for path in ALL_SOURCE_FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                size = node.end_lineno - node.lineno + 1
                where = f"{path.relative_to(REPO)}:{node.lineno} {node.name}"
                found.append((where, size, ast.get_docstring(node) or ""))
    return found


CLASS_LIMIT = 400


def test_no_class_grows_past_the_limit_unless_it_says_why() -> None:
    """One job per class: past the limit, the docstring must say why (mention 'lines')."""
    big = [
        f"{where} ({size} lines)"
        for where, size, doc in class_sizes()
        if size > CLASS_LIMIT and "lines" not in doc
    ]
    assert not big, f"classes over {CLASS_LIMIT} lines with no note why: {big}"
