"""Record code run in child processes and credit it to the context that started them.

Parent side (`ChildRecording`): every context switch puts the current context
key into the environment (`TESTMON_WATCH_CONTEXT`), so a child started now
inherits it; `PYTHONPATH` gains a directory holding our `sitecustomize`, which
starts recording in every new Python interpreter (multiprocessing spawn and
forkserver, `subprocess` running Python, `torch.multiprocessing.spawn`).
A forked child continues the parent's tracer; `os.register_at_fork` turns the
copy into a child recorder for the context current at fork time.

Child side: a child writes a `.started` marker when it begins and a `.json`
report (lines, reads, listings) when it ends: normal exit,
`sys.exit`, `os._exit` (multiprocessing's fork children end that way); a
`multiprocessing.Pool` worker also writes it after start-up and after every
task, since `Pool.terminate()` ends workers with SIGTERM. A child killed
before it could report (SIGKILL, a segfault, SIGTERM outside a pool) leaves
only the `.started` marker: its context is then reported incomplete, and the
test is marked to run again rather than trusted.

The variables, file names and the report's format are defined in
`testmon_watch.wire.child_report`.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from testmon_watch.core.keys import ContextKey
from testmon_watch.measure.file_reads import unobserved
from testmon_watch.paths import make_scratch_dir
from testmon_watch.wire.child_report import (
    CHILD_ENV,
    CONTEXT_ENV,
    KEY_SUFFIX,
    ChildFiles,
    ChildReport,
    ChildSettings,
    ChildState,
    children_of,
    decode_context,
    decode_report,
    decode_settings,
    decode_state,
    encode_context,
    encode_report,
    encode_settings,
    key_file_draft,
    key_file_name,
)

BOOT_DIR = Path(__file__).with_name("child_boot")


@dataclass
class ChildData:
    """What the children of one context recorded (paths relative to the root)."""

    lines: dict[str, set[int]] = field(default_factory=dict)
    reads: set[str] = field(default_factory=set)
    listings: set[str] = field(default_factory=set)
    distributions: set[str] = field(default_factory=set)  # installed ones they used
    lists_distributions: bool = False
    complete: int = 0  # children that ended and wrote their data
    incomplete: int = 0  # children that started and have not written (yet, or ever)

    def merge(self, report: ChildReport) -> None:
        for path, lines in report.lines.items():
            self.lines.setdefault(path, set()).update(lines)
        self.reads |= report.reads
        self.listings |= report.listings
        self.distributions |= report.distributions
        self.lists_distributions |= report.lists_distributions
        self.complete += 1


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ChildRecording:
    """Parent side: environment for children, and collection of what they wrote."""

    def __init__(self, root: Path, base_dir: Path) -> None:
        self.root = root
        self.base_dir = base_dir
        remove_stale_dirs(base_dir)
        self.dir = base_dir / str(os.getpid())
        make_scratch_dir(self.dir)
        self._saved_env: dict[str, str | None] = {}
        # The folder's mtime when a look found it empty: see _collect.
        self._empty_at: int | None = None

    def install(self) -> None:
        """Set the environment every child inherits."""
        values = {
            CHILD_ENV: encode_settings(ChildSettings(self.root, self.dir)),
            "PYTHONPATH": os.pathsep.join(
                [str(BOOT_DIR)]
                + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            ),
        }
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

        _explicit_env_additions.clear()
        _explicit_env_additions.update(values)
        _install_popen_hook()

    def uninstall(self) -> None:
        _explicit_env_additions.clear()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        os.environ.pop(CONTEXT_ENV, None)

    def set_context(self, key: ContextKey) -> None:
        os.environ[CONTEXT_ENV] = encode_context(key)
        _restart_forkserver()

    def collect(self, key: ContextKey, *, certain: bool = False) -> ChildData:
        """Take what finished children of `key` wrote; count the ones still missing.

        After every test, and most tests start no process: while the folder's
        mtime is what it was when a look found it empty, nothing is listed. A
        file created within the clock tick of that look can leave the mtime as
        it was; it is then taken by a later look, at the latest at the session's
        end (`leftover_keys`, `certain`), and stored as late data of its context.
        """
        data = ChildData()
        with unobserved():  # our own folder: no test's dependency
            return self._collect(key, data, certain)

    def _collect(self, key: ContextKey, data: ChildData, certain: bool) -> ChildData:
        try:
            mtime = os.stat(self.dir).st_mtime_ns
            if not certain and mtime == self._empty_at:
                return data
            names = [n for n in os.listdir(self.dir) if not n.startswith(".")]
        except FileNotFoundError:
            return data
        if not names:  # no child has started since the last look: the usual case
            self._empty_at = mtime
            return data
        self._empty_at = None
        listing = children_of(key, names)
        for child in listing.reported:
            path = self.dir / child.report
            try:
                data.merge(decode_report(path.read_text()))
            except (OSError, ValueError):
                data.incomplete += 1
                continue
            path.unlink(missing_ok=True)
            (self.dir / child.started).unlink(missing_ok=True)
        for child in listing.unreported:
            try:
                state = decode_state((self.dir / child.started).read_text())
            except OSError:
                continue
            # None: killed between creating and writing its marker (Pool.terminate's
            # SIGTERM reaches a worker still starting up), before any target ran.
            if state is ChildState.RUNNING:
                data.incomplete += 1
        return data

    def leftover_keys(self) -> dict[ContextKey, ChildData]:
        """At the end of the session: every context that still has child data or markers."""
        result: dict[ContextKey, ChildData] = {}
        for path in self.dir.glob("*" + KEY_SUFFIX):
            try:
                key = decode_context(path.read_text())
            except (OSError, ValueError):
                continue
            data = self.collect(key, certain=True)
            if data.complete or data.incomplete:
                result[key] = data
        return result

    def cleanup(self) -> None:
        for path in self.dir.glob("*"):
            path.unlink(missing_ok=True)
        try:
            self.dir.rmdir()
        except OSError:
            pass


# Variables a child needs, added to an explicit `env=` given to subprocess.Popen.
_explicit_env_additions: dict[str, str] = {}
_popen_hook_installed = False


def _install_popen_hook() -> None:
    global _popen_hook_installed
    if not _popen_hook_installed:
        _popen_hook_installed = True
        sys.addaudithook(_on_audit)


def _on_audit(event: str, args: tuple[Any, ...]) -> None:
    """`subprocess.Popen(..., env={...})` would drop our variables: add them to that dict.

    The audit event fires before Popen turns `env` into the child's environment,
    so adding to the mapping reaches the child.
    """
    if event != "subprocess.Popen" or not _explicit_env_additions:
        return
    try:
        if _ignores_our_environment(args[0], args[1]):
            _mark_unrecordable_child()
    except Exception:  # noqa: BLE001 - an audit hook must never raise into the program
        pass
    env = args[3] if len(args) > 3 else None
    if not isinstance(env, dict):
        return
    try:
        context = os.environ.get(CONTEXT_ENV)
        if context is not None:
            env.setdefault(CONTEXT_ENV, context)
        env.setdefault(CHILD_ENV, _explicit_env_additions[CHILD_ENV])
        boot = str(BOOT_DIR)
        current = env.get("PYTHONPATH", "")
        if isinstance(current, str) and boot not in current.split(os.pathsep):
            env["PYTHONPATH"] = os.pathsep.join(p for p in (boot, current) if p)
    except Exception:  # noqa: BLE001 - an audit hook must never raise into the program
        pass


def _ignores_our_environment(executable: Any, argv: Any) -> bool:
    """A Python started with -E, -I or -S never runs our sitecustomize: nothing is recorded."""
    if not isinstance(argv, (list, tuple)) or not argv:
        return False
    program = os.path.basename(str(executable or argv[0]))
    if not program.startswith("python"):
        return False
    for token in argv[1:]:
        token = str(token)
        if not token.startswith("-") or token.startswith("--") or token == "-":
            return False
        letters = token[1:]
        for letter in letters:
            if letter in "EIS":
                return True
            if letter in "cmWXQ":  # the rest of the token is this option's value
                break
        if letters[:1] in ("c", "m"):
            return False
    return False


_unrecordable_count = 0


def _mark_unrecordable_child() -> None:
    """Leave a marker that is never completed: the current test will run again."""
    global _unrecordable_count
    context = os.environ.get(CONTEXT_ENV)
    if not context:
        return
    key = decode_context(context)
    out_dir = decode_settings(_explicit_env_additions[CHILD_ENV]).dir
    _unrecordable_count += 1
    write_key(out_dir, key)
    marker = ChildFiles.of(key, f"unrecordable{_unrecordable_count}").started
    (out_dir / marker).write_text(str(ChildState.RUNNING))


def write_key(out_dir: Path, key: ContextKey) -> None:
    """`<hash>.key` names the context at the session's end; never seen half-written.

    Every child of a context writes it: one killed mid-write must not leave
    it empty for the others.
    """
    tmp = out_dir / key_file_draft(key, f"{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(encode_context(key))
    os.replace(tmp, out_dir / key_file_name(key))


def remove_stale_dirs(base_dir: Path) -> None:
    """Per-session folders of runs that crashed (their pid is gone) are removed."""
    if not base_dir.is_dir():
        return
    for entry in base_dir.iterdir():
        if entry.is_dir() and entry.name.isdigit() and not _pid_alive(int(entry.name)):
            for path in entry.glob("*"):
                path.unlink(missing_ok=True)
            try:
                entry.rmdir()
            except OSError:
                pass


def _restart_forkserver() -> None:
    """A running forkserver forks children with the context of the test that started it.

    Stopping it makes the next request start a new one under the current context.
    """
    forkserver = sys.modules.get("multiprocessing.forkserver")
    if forkserver is None:
        return
    server = getattr(forkserver, "_forkserver", None)
    if server is not None and getattr(server, "_forkserver_pid", None) is not None:
        stop = getattr(server, "_stop", None)
        if stop is not None:
            try:
                stop()
            except Exception:  # noqa: BLE001 - never break the test for this
                pass


# -- child side ---------------------------------------------------------------


class ChildRecorder:
    """Runs in a child: records everything the process executes, writes it on exit."""

    def __init__(
        self,
        root: Path,
        out_dir: Path,
        key: ContextKey,
        tracer: Any = None,
        multiprocessing_child: bool = False,
    ) -> None:
        # Imported here: every Python started while a test runs imports this module
        # (our sitecustomize), and most of them record nothing.
        from testmon_watch.measure.file_reads import FileReadWatcher
        from testmon_watch.measure.installed_use import InstalledUse
        from testmon_watch.measure.patches import InstalledPatches
        from testmon_watch.measure.project_files import ProjectFiles
        from testmon_watch.measure.tracer import make_tracer

        self.files = ProjectFiles(root)
        self.files_root = root
        self.multiprocessing_child = multiprocessing_child
        self.out_dir = out_dir
        self.key = key
        self.lines: dict[str, set[int]] = {}
        self.reads: set[str] = set()
        self.listings: set[str] = set()
        self.distributions: set[str] = set()
        self.lists_distributions = False
        self.tracer = tracer if tracer is not None else make_tracer(self.files.is_project)
        self.reads_watcher = FileReadWatcher(
            self.files.is_project,
            self._on_read,
            self._on_list,
            self._on_site_read,
            self._on_site_list,
        )
        self.installed = InstalledUse(root, ())
        self.installed_patches = InstalledPatches(self._on_import_statement, self._on_query)
        self._written_sizes: tuple[int, int, int, bool] = (-1, -1, -1, False)
        self.lock = threading.RLock()
        files = ChildFiles.of(key, os.getpid())
        self.started_path = out_dir / files.started
        self.data_path = out_dir / files.report
        self.draft_path = out_dir / files.report_draft

    def _on_read(self, path: str) -> None:
        rel = self.files.relative(path)
        if rel is not None and not self.installed.resolving:
            self.reads.add(rel)

    def _on_list(self, path: str) -> None:
        rel = self.files.relative(path)
        if rel is not None and not self.installed.resolving:
            self.listings.add(rel)

    # Installed distributions, by the rule of the pytest process (measure/recorder.py).

    def _on_import_statement(self, name: str) -> None:
        if not self.installed.resolving:
            self.distributions |= self.installed.imported(name)

    def _on_query(self, name: str | None) -> None:
        if self.installed.resolving:
            return
        if name is None:
            self.lists_distributions = True
        else:
            self.distributions |= self.installed.asked(name)

    def _on_site_read(self, path: str) -> None:
        if not self.installed.resolving:
            self.distributions |= self.installed.read(path)

    def _on_site_list(self, path: str) -> None:
        from testmon_watch.measure.frames import called_by_importlib

        if self.installed.resolving or called_by_importlib(metadata=True):
            return
        if self.installed.lists_all(path):
            self.lists_distributions = True
        else:
            self.distributions |= self.installed.read(path)

    def start(self, tracer_running: bool = False) -> None:
        # Exit paths first: from the moment the marker exists, every way out but
        # SIGKILL or a crash writes the report.
        _current[:] = [self]
        atexit.register(_write_current)
        _wrap_os_exit(_write_current)
        install_pool_hook()
        write_key(self.out_dir, self.key)
        # A multiprocessing child is "starting" until its target runs (see
        # _bootstrap): killed before that, it ran nothing and lost nothing.
        state = ChildState.STARTING if self.multiprocessing_child else ChildState.RUNNING
        self.started_path.write_text(str(state))
        from testmon_watch.core.distributions import site_dirs

        self.reads_watcher.site_dirs = self.installed.site_dirs = site_dirs(self.files_root)
        self.installed_patches.install()
        self.reads_watcher.enable()
        if not tracer_running:
            self.tracer.start()
        record_forks(self._become_forked_child)

    def _become_forked_child(self) -> None:
        """A child of a child (e.g. forkserver's workers): same context, its own report."""
        if _current and _current[0] is self:
            _current.clear()
            become_forked_child(self.tracer, self.key, self.files_root, self.out_dir)

    def mark_running(self) -> None:
        try:
            self.started_path.write_text(str(ChildState.RUNNING))
        except OSError:
            pass

    def write(self, snapshot: bool = False) -> None:
        """Save everything recorded so far, replacing the previous report.

        Also called between pool tasks (`snapshot=True`): `Pool.terminate()` ends
        its workers with SIGTERM, which no handler can catch safely (one that
        interrupts a semaphore wait can hang the pool), so what counts is the
        report written after the worker's last task. A snapshot with nothing
        new is skipped.
        """
        with self.lock:
            self._write_report(skip_if_unchanged=snapshot)

    def _write_report(self, skip_if_unchanged: bool) -> None:
        changed = not self.data_path.exists()
        try:
            for path, lines in self.tracer.take().items():
                rel = self.files.relative(path)
                if rel is not None:
                    known = self.lines.setdefault(rel, set())
                    if not lines <= known:
                        known.update(lines)
                        changed = True
        except Exception:  # noqa: BLE001 - a broken tracer must not hide the rest
            changed = True
        size = (
            len(self.reads),
            len(self.listings),
            len(self.distributions),
            self.lists_distributions,
        )
        changed = changed or size != self._written_sizes
        if skip_if_unchanged and not changed:
            return
        self._written_sizes = size
        report = ChildReport(
            self.key,
            os.getpid(),
            self.lines,
            self.reads,
            self.listings,
            frozenset(self.distributions),
            self.lists_distributions,
        )
        try:
            self.draft_path.write_text(encode_report(report))
            os.replace(self.draft_path, self.data_path)
        except OSError:
            pass


_original_exit: Callable[[int], Any] | None = None
_current: list[ChildRecorder] = []  # the recorder of this process (a fork gets its own)


def _write_current(snapshot: bool = False) -> None:
    if _current:
        _current[0].write(snapshot=snapshot)


# -- multiprocessing.Pool workers ----------------------------------------------


class _ReportingQueue:
    """A pool worker's result queue that saves the report before each result is sent.

    The parent sees a task's result only after the child's lines are on disk.
    """

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def put(self, obj: Any) -> None:
        _write_current(snapshot=True)
        self._queue.put(obj)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


_original_pool_worker: Callable[..., Any] | None = None


def _pool_worker(inqueue: Any, outqueue: Any, *args: Any, **kwargs: Any) -> Any:
    """multiprocessing.pool.worker, reporting after start-up and after every task.

    Module level, so a spawn child can unpickle it by name.
    """
    import multiprocessing.pool  # noqa: F401 - a spawn child may not have it yet; patches it

    install_pool_hook()
    assert _original_pool_worker is not None
    _write_current(snapshot=True)  # an idle worker ends with a (complete) report too
    return _original_pool_worker(inqueue, _ReportingQueue(outqueue), *args, **kwargs)


_original_executor_worker: Callable[..., Any] | None = None


def _executor_worker(call_queue: Any, result_queue: Any, *args: Any, **kwargs: Any) -> Any:
    """concurrent.futures.process._process_worker, reporting as a pool worker does.

    A ProcessPoolExecutor that a test never shuts down keeps its workers until
    the interpreter exits, long after the session's end: what counts is the
    report written before each result, as for `multiprocessing.Pool`.
    Module level, so a spawn child can unpickle it by name.
    """
    import concurrent.futures.process  # noqa: F401 - a spawn child may not have it yet

    install_pool_hook()
    assert _original_executor_worker is not None
    _write_current(snapshot=True)  # an idle worker ends with a (complete) report too
    return _original_executor_worker(call_queue, _ReportingQueue(result_queue), *args, **kwargs)


_POOL_TARGETS = (_pool_worker, _executor_worker)  # report after every task, never "running"

_original_bootstrap: Callable[..., Any] | None = None


def _bootstrap(self: Any, *args: Any, **kwargs: Any) -> Any:
    """multiprocessing's process entry: the target is about to run (pool workers report)."""
    if getattr(self, "_target", None) not in _POOL_TARGETS and _current:
        _current[0].mark_running()
    assert _original_bootstrap is not None
    return _original_bootstrap(self, *args, **kwargs)


def install_pool_hook() -> None:
    """Pools use `_pool_worker`; processes say when their target starts (here and in forks).

    A module multiprocessing has not loaded yet is patched the moment it is
    imported (before any process or pool can exist), so a run whose tests never
    touch multiprocessing does not pay for importing it.
    """
    waiting = False
    for name, patch in _MULTIPROCESSING_PATCHES.items():
        module = sys.modules.get(name)
        if module is not None:
            patch(module)
        else:
            waiting = True
    if waiting and not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


def _patch_process(module: Any) -> None:
    global _original_bootstrap
    base = module.BaseProcess
    if base._bootstrap is not _bootstrap:
        _original_bootstrap = base._bootstrap
        base._bootstrap = _bootstrap


def _patch_pool(module: Any) -> None:
    global _original_pool_worker
    current = getattr(module, "worker")  # noqa: B009 - private to multiprocessing
    if current is not _pool_worker:
        _original_pool_worker = current
        setattr(module, "worker", _pool_worker)  # noqa: B010


def _patch_executor(module: Any) -> None:
    global _original_executor_worker
    current = getattr(module, "_process_worker", None)
    if current is not None and current is not _executor_worker:
        _original_executor_worker = current
        setattr(module, "_process_worker", _executor_worker)  # noqa: B010


_MULTIPROCESSING_PATCHES: dict[str, Callable[[Any], None]] = {
    "multiprocessing.process": _patch_process,
    "multiprocessing.pool": _patch_pool,
    "concurrent.futures.process": _patch_executor,
}


class _PatchOnImport:
    """Import finder that patches a multiprocessing module right after it loads."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        patch = _MULTIPROCESSING_PATCHES.get(name)
        if patch is None:
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader: Any = getattr(spec, "loader", None)
        if spec is None or not hasattr(loader, "exec_module"):
            return None  # not ours to load: the next finder loads it unpatched
        load = loader.exec_module
        finder = self

        def exec_module(module: Any) -> None:
            load(module)
            try:
                patch(module)
            except Exception:  # noqa: BLE001 - never break the user's import
                pass
            if all(n in sys.modules for n in _MULTIPROCESSING_PATCHES) and finder in sys.meta_path:
                sys.meta_path.remove(finder)

        loader.exec_module = exec_module
        return spec


# -- forks ------------------------------------------------------------------------

# What a process forked from this one becomes: a child recorder of the context
# current at the fork. Set by whoever records in this process (the session's
# Recorder, or a ChildRecorder in a child); one fork hook serves both.
_on_fork: list[Callable[[], object]] = []
_fork_hook_installed = False


def record_forks(become_child: Callable[[], object]) -> None:
    """From now on, a process forked from this one calls `become_child` first thing."""
    global _fork_hook_installed
    _on_fork[:] = [become_child]
    if not _fork_hook_installed and hasattr(os, "register_at_fork"):
        _fork_hook_installed = True
        os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    if not _on_fork:
        return
    become_child = _on_fork.pop()
    try:
        become_child()
    except Exception:  # noqa: BLE001 - never break the child
        pass


def _wrap_os_exit(flush: Callable[[], None]) -> None:
    global _original_exit
    if _original_exit is None:
        _original_exit = os._exit

    original = _original_exit

    def _exit(code: int) -> None:
        flush()
        original(code)

    os._exit = _exit  # type: ignore[assignment]


def start_child_recording() -> ChildRecorder | None:
    """Entry point for a new interpreter (called from our sitecustomize)."""
    config = os.environ.get(CHILD_ENV)
    context = os.environ.get(CONTEXT_ENV)
    if not config or not context:
        return None
    if any("multiprocessing.resource_tracker" in arg for arg in getattr(sys, "orig_argv", ())):
        return None  # stdlib bookkeeping that outlives every test: never a dependency
    try:
        settings = decode_settings(config)
        key = decode_context(context)
    except ValueError:
        return None  # set by another version of testmon-watch: run unrecorded
    if not settings.dir.is_dir():
        return None  # the run that started us is over
    spawned = any("multiprocessing" in arg for arg in getattr(sys, "orig_argv", ()))
    recorder = ChildRecorder(settings.root, settings.dir, key, multiprocessing_child=spawned)
    recorder.start()
    return recorder


def _forking_for_multiprocessing() -> bool:
    """True when os.fork() was called by multiprocessing (its Popen or the forkserver)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.endswith(("popen_fork.py", "forkserver.py")) and "multiprocessing" in name:
            return True
        frame = frame.f_back
    return False


def become_forked_child(tracer: Any, key: ContextKey, root: Path, out_dir: Path) -> ChildRecorder:
    """In a child made by os.fork(): keep the inherited tracer, record for `key`."""
    tracer.take()  # lines before the fork belong to the parent, which has them too
    # Forked by multiprocessing (or by hand): "starting" until a target runs. A bare
    # os.fork() never reaches _bootstrap, so it is marked running right away.
    in_multiprocessing = _forking_for_multiprocessing()
    recorder = ChildRecorder(
        root, out_dir, key, tracer=tracer, multiprocessing_child=in_multiprocessing
    )
    recorder.start(tracer_running=True)
    return recorder
