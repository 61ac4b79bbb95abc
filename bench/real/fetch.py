"""Fetch a pinned sdist from PyPI, verify its sha256, unpack it, and make tool checkouts.

Everything lives under REAL_DIR, outside this repository (``$TESTMON_WATCH_BENCH_DIR``,
else ``~/.cache/testmon-watch-bench/real``): pytest looks for its configuration in
the folders above a project, so a checkout inside the repository whose project has
no pytest section of its own (more-itertools) would run with *our* pyproject.toml as
its configuration and ``/work/...`` as its rootdir, its data file there, shared by
every tool. ``check_rootdir`` refuses such a run.

* ``sdist(project)``: ``REAL_DIR/sdists/<file>``, downloaded once (the URL
  comes from PyPI's JSON API: the pinned version's files); its sha256 must equal the
  pinned one, else FetchError (one line) and the file is not kept.
* ``source(project)``: the sdist unpacked into ``REAL_DIR/src/<name>-<version>/``
  (never modified: the pristine files the checkouts are restored from).
* ``checkout(project, tool)``: ``REAL_DIR/<name>/<tool>/``, a copy of the
  source that the tool's venv installs with ``pip install -e``; ``reset`` restores
  the edited file and removes data files and caches between phases.
* ``edit_spec(project, root)``: the one-function-body edit as a gen_projects.EditSpec.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

from gen_projects import EditSpec
from measure import remove_data
from projects import RealProject

BENCH_DIR = Path(__file__).resolve().parent.parent
REAL_DIR = (
    Path(os.environ["TESTMON_WATCH_BENCH_DIR"])
    if os.environ.get("TESTMON_WATCH_BENCH_DIR")
    else Path.home() / ".cache" / "testmon-watch-bench"
) / "real"
SDIST_DIR = REAL_DIR / "sdists"
SRC_DIR = REAL_DIR / "src"
PYPI_JSON = "https://pypi.org/pypi/{dist}/json"
EDIT_NAME = "_bench_edit"  # the statement the edit inserts: `_bench_edit = N`


class FetchError(RuntimeError):
    """The sdist could not be fetched, verified or unpacked; the message is one line."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sdist_url(project: RealProject) -> str:
    """The sdist's download URL, from PyPI's JSON API (the pinned version's files)."""
    api = PYPI_JSON.format(dist=project.dist)
    try:
        with urllib.request.urlopen(api, timeout=60) as resp:
            info = json.load(resp)
    except (OSError, ValueError) as exc:
        raise FetchError(f"{project.name}: cannot read {api}: {exc}") from exc
    for entry in info.get("releases", {}).get(project.version, []):
        if entry.get("filename") == project.sdist:
            return urllib.parse.urljoin(api, str(entry["url"]))
    raise FetchError(f"{project.name}: {project.sdist} is not among {api}'s files")


def sdist(project: RealProject) -> Path:
    """The verified sdist file, downloaded when missing."""
    path = SDIST_DIR / project.sdist
    if path.exists() and _sha256(path) == project.sha256:
        return path
    SDIST_DIR.mkdir(parents=True, exist_ok=True)
    url = _sdist_url(project)
    part = path.with_name(path.name + ".part")
    print(f"  {project.name}: downloading {url}", flush=True)
    try:
        with urllib.request.urlopen(url, timeout=180) as resp, part.open("wb") as fh:
            shutil.copyfileobj(resp, fh)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise FetchError(f"{project.name}: download of {url} failed: {exc}") from exc
    got = _sha256(part)
    if got != project.sha256:
        part.unlink()
        raise FetchError(
            f"{project.name}: sha256 mismatch for {project.sdist}: "
            f"got {got}, pinned {project.sha256}; refusing it"
        )
    part.replace(path)
    return path


def source(project: RealProject) -> Path:
    """The unpacked, untouched sdist (its single top directory)."""
    root = SRC_DIR / f"{project.name}-{project.version}"
    stamp = root / ".bench-sha256"
    if stamp.exists() and stamp.read_text().strip() == project.sha256:
        return root
    archive = sdist(project)
    if root.exists():
        shutil.rmtree(root)
    tmp = root.with_name(root.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(archive) as tar:
            try:
                tar.extractall(tmp, filter="data")
            except TypeError:  # Python < 3.11.4: no extraction filters
                tar.extractall(tmp)  # a pinned, sha256-verified sdist
    except (OSError, tarfile.TarError) as exc:
        raise FetchError(f"{project.name}: cannot unpack {archive}: {exc}") from exc
    tops = list(tmp.iterdir())
    if len(tops) != 1 or not tops[0].is_dir():
        raise FetchError(f"{project.name}: {archive} has no single top directory")
    tops[0].rename(root)
    tmp.rmdir()
    stamp.write_text(project.sha256 + "\n")
    return root


def checkout(project: RealProject, tool: str) -> Path:
    """The tool's working copy (created from the source when missing or outdated)."""
    src = source(project)
    root = REAL_DIR / project.name / tool
    stamp = root / ".bench-sha256"
    if not (stamp.exists() and stamp.read_text().strip() == project.sha256):
        if root.exists():
            shutil.rmtree(root)
        root.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, root)
    return root


def reset(project: RealProject, root: Path) -> None:
    """Undo a bench run in a checkout: the edited file as shipped, no data, no caches."""
    src = source(project) / project.edit.path
    shutil.copy2(src, root / project.edit.path)
    remove_data(root)
    shutil.rmtree(root / ".pytest_cache", ignore_errors=True)


def edit_spec(project: RealProject, root: Path) -> EditSpec:
    """The body edit: `_bench_edit = N` inserted before the function's first statement.

    The marker is that statement's first line (more lines while it is not unique in
    the file); variant N puts the assignment on its own line before it, at the same
    indentation. Every variant changes the function's body and nothing else.
    """
    path = root / project.edit.path
    text = path.read_text(encoding="utf-8")
    node: ast.AST = ast.parse(text)
    for part in project.edit.function.split("."):
        found = [
            n
            for n in ast.iter_child_nodes(node)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and n.name == part
        ]
        if not found:
            raise FetchError(f"{project.name}: no {project.edit.function} in {path}")
        node = found[0]
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    body = node.body
    if (
        len(body) > 1
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]  # the docstring
    lines = text.splitlines(keepends=True)
    first = body[0].lineno - 1
    indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
    end = first + 1
    while text.count("".join(lines[first:end])) != 1:
        end += 1
        if end > len(lines):
            raise FetchError(f"{project.name}: no unique marker in {project.edit.function}")
    marker = "".join(lines[first:end])
    escaped = marker.replace("{", "{{").replace("}", "}}")
    return EditSpec(
        path=project.edit.path,
        function=project.edit.function,
        marker=marker,
        template=f"{indent}{EDIT_NAME} = {{n}}\n{escaped}",
        expected_selected=-1,  # unknown for a real project: the tools' counts are compared
    )


def check_rootdir(root: Path, output: str) -> None:
    """FetchError unless pytest's header says it ran with `root` as its rootdir."""
    found = re.search(r"^rootdir: (.+)$", output, re.MULTILINE)
    if found is None or Path(found.group(1).strip()).resolve() != root.resolve():
        seen = found.group(1).strip() if found else "none"
        raise FetchError(f"pytest ran with rootdir {seen}, not the checkout {root}")
