"""Keep compiled project code between worker children, keyed by content.

Two kinds of entries: pytest's rewritten test modules, and project modules
compiled by Python's own loader.

pytest rewrites the asserts of every test module it imports: parse, transform,
compile, tens to hundreds of milliseconds for a large module. It caches the
result in `__pycache__` next to the module, unless bytecode is not written
(PYTHONDONTWRITEBYTECODE, as in many containers and CI images): then every run
rewrites every test module it collects again. In the watch loop that was most
of the time from a save to the first result on real projects (toolz: 0.34 s of
0.45 s to rewrite test_itertoolz.py after a one-line edit of toolz/itertoolz.py).

Each worker child is a fresh fork, so the cache lives on disk, outside the
project (the user asked for no bytecode in their tree): one file per rewritten
module under the user's cache directory. An entry is found by a digest of
everything the rewritten code depends on: the source bytes, its path (code
objects carry it), the interpreter's bytecode magic, pytest's version and the
rewrite option that changes the output. A changed source has another digest,
so an entry is never stale; nothing is compared by time.

This wraps a private pytest function (`_pytest.assertion.rewrite._rewrite_test`);
if pytest moves it, `install` changes nothing and pytest rewrites as before.

Project modules (`SourceFileLoader.get_code` for files of the project) are
compiled once per content too, in every environment: without bytecode that
saves compiling every unchanged module on every run; with bytecode it also
means a module is never loaded from a `__pycache__` entry that its timestamp
and size cannot tell from the source (an edit within the same second that
keeps the size: Python would run the old code). Other modules load as usual.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import marshal
import os
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from testmon_watch.core.cache_home import cache_home

FORMAT = b"testmon-watch code cache 1"
# Entries beyond this many are removed, oldest first, when a worker starts.
MAX_ENTRIES = 2000


def cache_dir() -> Path:
    """Where the entries live: `code/` in our cache home (paths.cache_home)."""
    return cache_home() / "code"


class CodeCache:
    """Code objects on disk, one marshal file per digest."""

    def __init__(self, directory: Path, pytest_version: str) -> None:
        self.directory = directory
        self._salt = b"\0".join([FORMAT, importlib.util.MAGIC_NUMBER, pytest_version.encode()])
        # Digest -> code loaded ahead in this process (load_ahead): no unmarshal then.
        self.memory: dict[str, types.CodeType] = {}
        self.hits = 0
        self.misses = 0
        self.memory_hits = 0

    def digest(self, path: str, source: bytes, options: str) -> str:
        h = hashlib.sha256(self._salt)
        for part in (path.encode("utf-8", "surrogateescape"), options.encode(), source):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
        return h.hexdigest()

    def _file(self, digest: str) -> Path:
        return self.directory / digest[:2] / digest[2:]

    def module_digest(self, path: str, source: bytes) -> str:
        """The key of a project module compiled by Python's own loader (not rewritten)."""
        return self.digest(path, source, "module")

    def pyc_digest(self, path: str, source: bytes, pyc: str) -> str:
        """The key of pytest's own rewritten entry `pyc` for `source` (memory only)."""
        return self.digest(path, source, f"pyc:{pyc}")

    def load(self, digest: str) -> types.CodeType | None:
        held = self.memory.get(digest)
        if held is not None:
            self.memory_hits += 1
            return held
        try:
            data = self._file(digest).read_bytes()
            code = marshal.loads(data)
        except (OSError, ValueError, EOFError, TypeError):
            return None
        return code if isinstance(code, types.CodeType) else None

    def store(self, digest: str, code: types.CodeType) -> None:
        """Write atomically (a reader sees a whole entry or none); any failure is ignored."""
        target = self._file(digest)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(marshal.dumps(code))
            os.replace(tmp, target)
        except (OSError, ValueError):
            try:
                tmp.unlink()
            except OSError:
                pass

    def prune(self, keep: int = MAX_ENTRIES) -> None:
        """Remove the oldest entries beyond `keep` (by modification time)."""
        try:
            entries = [p for p in self.directory.glob("??/*") if not p.name.endswith(".tmp")]
            if len(entries) <= keep:
                return
            entries.sort(key=lambda p: p.stat().st_mtime)
            for path in entries[: len(entries) - keep]:
                path.unlink()
        except OSError:
            pass


RewriteFn = Callable[[Path, Any], tuple[Any, types.CodeType]]


def _rewrite_options(config: Any) -> str:
    # The only ini option that changes rewritten code: the assertion pass hook.
    try:
        return f"pass_hook={bool(config.getini('enable_assertion_pass_hook'))}"
    except (ValueError, AttributeError):
        return "pass_hook=?"


def _first_value(fn: Path, source: bytes, returns_hash: bool) -> Any:
    """What pytest's function returns next to the code: a source hash (9.x) or a stat."""
    if returns_hash:
        return importlib.util.source_hash(source)
    return os.stat(fn)


def cached_rewrite(original: RewriteFn, cache: CodeCache, returns_hash: bool) -> RewriteFn:
    """`original` (pytest's `_rewrite_test`) with the cache in front of it."""

    def rewrite(fn: Path, config: Any) -> tuple[Any, types.CodeType]:
        try:
            source = fn.read_bytes()
        except OSError:
            return original(fn, config)
        digest = cache.digest(str(fn), source, _rewrite_options(config))
        code = cache.load(digest)
        if code is not None:
            cache.hits += 1
            return _first_value(fn, source, returns_hash), code
        cache.misses += 1
        first, code = original(fn, config)
        cache.store(digest, code)
        return first, code

    return rewrite


def install_rewrite(cache: CodeCache) -> bool:
    """Put the cache in front of pytest's assertion rewriting in this process.

    False when pytest's function is not where it was, or already wrapped (nothing
    changed then).
    """
    try:
        import _pytest.assertion.rewrite as rewrite_module
    except ImportError:
        return False
    original = getattr(rewrite_module, "_rewrite_test", None)
    if original is None or getattr(original, "_testmon_cached", False):
        return False
    annotation = str(getattr(original, "__annotations__", {}).get("return", ""))
    wrapped = cached_rewrite(original, cache, returns_hash="bytes" in annotation)
    wrapped._testmon_cached = True  # type: ignore[attr-defined]
    setattr(rewrite_module, "_rewrite_test", wrapped)  # noqa: B010 - mypy: another signature
    return True


ReadPyc = Callable[..., "types.CodeType | None"]


def cached_read_pyc(original: ReadPyc, cache: CodeCache) -> ReadPyc:
    """`original` (pytest's `_read_pyc`) that first looks in the memory `load_ahead` filled."""

    def read_pyc(source: Path, pyc: Path, *args: Any, **kwargs: Any) -> types.CodeType | None:
        if cache.memory:
            try:
                data = Path(source).read_bytes()
            except OSError:
                return original(source, pyc, *args, **kwargs)
            held = cache.memory.get(cache.pyc_digest(str(source), data, str(pyc)))
            if held is not None:
                cache.memory_hits += 1
                return held
        return original(source, pyc, *args, **kwargs)

    read_pyc._testmon_original = original  # type: ignore[attr-defined]
    return read_pyc


def install_read_pyc(cache: CodeCache) -> bool:
    """Put the memory in front of pytest's reading of its rewritten `__pycache__` entries."""
    try:
        import _pytest.assertion.rewrite as rewrite_module
    except ImportError:
        return False
    original = getattr(rewrite_module, "_read_pyc", None)
    if original is None or hasattr(original, "_testmon_original"):
        return False
    setattr(rewrite_module, "_read_pyc", cached_read_pyc(original, cache))  # noqa: B010
    return True


GetCode = Callable[[Any, str], "types.CodeType | None"]


def cached_get_code(
    original: GetCode, cache: CodeCache, is_project: Callable[[str], bool]
) -> GetCode:
    """`SourceFileLoader.get_code` that compiles a project module once per content."""

    def get_code(loader: Any, fullname: str) -> types.CodeType | None:
        try:
            path = loader.get_filename(fullname)
        except ImportError:
            return original(loader, fullname)
        if not is_project(path):
            return original(loader, fullname)
        source = loader.get_data(path)  # an OSError is the import's error, as in Python's
        digest = cache.module_digest(path, source)
        code = cache.load(digest)
        if code is not None:
            cache.hits += 1
            return code
        cache.misses += 1
        compiled: types.CodeType = loader.source_to_code(source, path)
        cache.store(digest, compiled)
        return compiled

    return get_code


def install_modules(cache: CodeCache, is_project: Callable[[str], bool]) -> bool:
    """Compile the project's modules through the cache (`SourceFileLoader.get_code`)."""
    loader_class = importlib.machinery.SourceFileLoader
    original = loader_class.get_code
    if getattr(original, "_testmon_cached", False):
        return False
    wrapped = cached_get_code(original, cache, is_project)
    wrapped._testmon_cached = True  # type: ignore[attr-defined]
    setattr(loader_class, "get_code", wrapped)  # noqa: B010 - a method replaced on the class
    return True


# The cache and project test of this process once `use_code_caches` installed them.
_active: tuple[CodeCache, Callable[[str], bool]] | None = None


def _hold_module(cache: CodeCache, path: str) -> None:
    """The compiled code of `path` as it is now, in memory (from disk, else compiled)."""
    source = Path(path).read_bytes()
    digest = cache.module_digest(path, source)
    if digest in cache.memory:
        return
    code = cache.load(digest)
    if code is None:
        loader = importlib.machinery.SourceFileLoader("_testmon_watch_ahead", path)
        code = loader.source_to_code(source, path)
        cache.store(digest, code)
    cache.memory[digest] = code


def _hold_rewritten(cache: CodeCache, path: str, config: Any) -> None:
    """The rewritten code of test module `path` as it is now, in memory, if some cache has it.

    Not rewritten here when none has: that is pytest's work, done at the import.
    """
    import _pytest.assertion.rewrite as rewrite_module

    source = Path(path).read_bytes()
    reader = getattr(rewrite_module, "_read_pyc", None)
    original = getattr(reader, "_testmon_original", None)
    if original is None:  # no bytecode written: our own entries (install_rewrite)
        digest = cache.digest(path, source, _rewrite_options(config))
        code = cache.load(digest)
        if code is not None:
            cache.memory[digest] = code
        return
    fn = Path(path)
    pyc = rewrite_module.get_cache_dir(fn) / (fn.name[:-3] + rewrite_module.PYC_TAIL)
    code = original(fn, pyc)
    # pytest checks its entry against the file's time and size: keep the code only
    # if the content was the same before and after, so the key says what it is.
    if code is not None and Path(path).read_bytes() == source:
        cache.memory[cache.pyc_digest(path, source, str(pyc))] = code


def compile_ahead(path: str) -> None:
    """Compile a project module's current content into the cache now; never raises.

    For the waiting standby while a save settles (worker/standby.py): the import
    after the release then finds what was compiled here in memory instead of
    compiling on the way to the first result (jinja2's filters.py: 6 ms). Keyed by
    content like every entry: content written after this one is compiled at its
    import.
    """
    if _active is None:
        return
    cache, is_project = _active
    try:
        if is_project(path):
            _hold_module(cache, path)
    except Exception:  # noqa: BLE001 - unreadable or half-written: the import meets it
        return


def load_ahead(
    rewritten: Iterable[str],
    compiled: Iterable[str],
    config: Any,
    stop: Callable[[], bool],
) -> int:
    """Load the code of project modules into memory before they are imported; never raises.

    For the waiting standby (worker/standby.py), with the modules the last run
    imported: `rewritten` test modules (pytest's assertion rewriting, `config` its
    configuration) and `compiled` modules. Checks `stop` before each file and
    returns early when it says so (a release is waiting). Returns how many files
    it read.
    """
    if _active is None:
        return 0
    cache, is_project = _active
    done = 0
    work = [(path, True) for path in rewritten] + [(path, False) for path in compiled]
    for path, is_test_module in work:
        if stop():
            return done
        try:
            if not is_project(path):
                continue
            if is_test_module:
                _hold_rewritten(cache, path, config)
            else:
                _hold_module(cache, path)
            done += 1
        except Exception:  # noqa: BLE001 - gone, unreadable, half-written: the import meets it
            continue
    return done


def use_code_caches(root: Path, directory: Path | None = None) -> CodeCache | None:
    """In a worker process: compile project modules, and rewrite test modules, once per content.

    The test-module entries only where bytecode is not written: elsewhere pytest's
    own `__pycache__` entries serve, checked by content since pytest 9, with the
    memory of `load_ahead` in front of them. Prunes old entries once per start.
    None when pytest cannot be imported.
    """
    try:
        import pytest
    except ImportError:
        return None
    from testmon_watch.measure.project_files import ProjectFiles

    global _active
    cache = CodeCache(directory or cache_dir(), pytest.__version__)
    is_project = ProjectFiles(root).is_project
    install_modules(cache, is_project)
    _active = (cache, is_project)
    if sys.dont_write_bytecode:
        install_rewrite(cache)
    else:
        install_read_pyc(cache)
    cache.prune()
    return cache
