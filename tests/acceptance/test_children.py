"""Code run in child processes counts for the test that started them.

Every project here has a `work.py` whose functions only children execute: the
pytest process never runs them, so a test can only be selected after an edit
if what its children executed was recorded and credited to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

WORK = """
    import os
    import time


    def fa(x=1):
        return x + 1


    def fb(x=1):
        return x + 2


    def fc(x=1):
        return x + 3


    def unused(x=1):
        return x + 100


    def grand(x=1):
        return x * 10


    def outer_fork(x=1):
        import multiprocessing

        p = multiprocessing.get_context("fork").Process(target=grand, args=(x,))
        p.start()
        p.join()
        assert p.exitcode == 0


    def outer_spawn_from_subprocess():
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(1) as pool:
            assert pool.map(grand, [1]) == [10]


    def then_block(ready):
        fa()
        ready.set()
        time.sleep(3600)


    def then_exit():
        fa()
        os._exit(0)


    def late(x=1):
        time.sleep(1.0)  # still running when the test that started it has ended
        return fa(x)


    def then_segfault():
        import ctypes

        fa()
        ctypes.string_at(0)
"""

LAUNCH = """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor


    def in_children(fn, method, kind):
        ctx = multiprocessing.get_context(method)
        if kind == "process":
            procs = [ctx.Process(target=fn, args=(i,)) for i in (1, 2)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            assert [p.exitcode for p in procs] == [0, 0]
        elif kind == "pool":
            with ctx.Pool(2) as pool:
                assert len(pool.map(fn, [1, 2])) == 2
        elif kind == "executor":
            with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as ex:
                assert len(list(ex.map(fn, [1, 2]))) == 2
        else:
            raise ValueError(kind)
"""

METHODS = ["spawn", "forkserver", "fork"]
KINDS = ["process", "pool", "executor"]


def make_project(project, tests: str) -> None:
    project.write("work.py", WORK)
    project.write("launch.py", LAUNCH)
    project.write("test_kids.py", tests)


def edit(project, fn: str) -> None:
    """Change the body of `fn` in work.py (a different return value: a new block checksum)."""
    bodies = {"fa": "x + 1", "fb": "x + 2", "fc": "x + 3", "unused": "x + 100", "grand": "x * 10"}
    old = f"def {fn}(x=1):\n    return {bodies[fn]}\n"
    project.replace("work.py", old, f"def {fn}(x=1):\n    return ({bodies[fn]}) * 1\n")


RUN_TIMEOUT = 120


def run(project, *args: str, testmon: bool = True) -> Any:
    """`project.run`, in its own process group, with a timeout.

    A child that hangs (or outlives pytest) must fail this test, not hang the
    suite: on timeout the whole group is killed, and processes of the group
    still alive after pytest ended are reported.
    """
    flags = ["--testmon"] if testmon else []
    # -s and faulthandler: on a hang, every process of the group prints its stacks.
    # (Not under xdist: there -s drops the percentage from the result lines the parser reads.)
    no_capture = [] if "-n" in args else ["-s"]
    # An explicit --basetemp, as pytester gives its own runs: with the default one the
    # inner pytest would prune numbered temp dirs, the outer session's among them.
    basetemp = project.path.parent / f"{project.path.name}-inner-tmp"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *flags,
        "-v",
        *no_capture,
        "-p",
        "no:cacheprovider",
        f"--basetemp={basetemp}",
        *args,
    ]
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=project.path,
        stdout=subprocess.PIPE,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        ps = subprocess.run(
            ["ps", "-o", "pid,ppid,stat,wchan:24,args", "-g", str(proc.pid)],
            capture_output=True,
            text=True,
        ).stdout
        files = "\n".join(str(p.relative_to(project.path)) for p in children_files(project))
        os.killpg(proc.pid, signal.SIGABRT)
        time.sleep(2)
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(
            f"pytest did not finish in {RUN_TIMEOUT}s (a child hung?)\n"
            f"processes:\n{ps}\nchildren files:\n{files}\n{out}\n{err}"
        )
    # Children (and multiprocessing's resource tracker) exit when the run closes
    # their pipes; on a busy machine that takes a moment. Await their exit.
    deadline = time.monotonic() + 20
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"processes started by the run outlived it by 20 s (killed)\n{out}\n{err}")
    result = pytest.RunResult(
        proc.returncode, out.splitlines(), err.splitlines(), time.perf_counter() - start
    )
    run_class = project.run_class
    return run_class(result)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def first_run(project, *args: str) -> Any:
    result = run(project, *args)
    assert result.ret == 0, result.text
    return result


def children_files(project) -> list[Path]:
    """Report files left in the children folder (its own .gitignore is no report)."""
    base = project.path / ".testmondata-children"
    if not base.exists():
        return []
    return sorted(p for p in base.rglob("*") if p.is_file() and p != base / ".gitignore")


# -- 1. multiprocessing: every start method, Process / Pool.map / ProcessPoolExecutor --------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHODS)
def test_multiprocessing_child_code_selects_exactly_its_test(project, method, kind) -> None:
    make_project(
        project,
        f"""
        import work
        from launch import in_children


        def test_a():
            in_children(work.fa, {method!r}, {kind!r})


        def test_b():
            in_children(work.fb, {method!r}, {kind!r})


        def test_no_children():
            assert True
    """,
    )
    first = first_run(project)
    assert len(first.ran) == 3
    assert run(project).ran == set()

    edit(project, "unused")
    assert run(project).ran == set()  # no child ran it

    edit(project, "fa")
    result = run(project)
    assert result.ran == {"test_kids.py::test_a"}, result.text
    assert result.ret == 0
    assert run(project).ran == set()
    assert children_files(project) == []


# -- 2. subprocess running Python ------------------------------------------------------------


def test_subprocess_python_c_and_dash_m(project) -> None:
    make_project(
        project,
        """
        import subprocess
        import sys


        def test_dash_c():
            subprocess.run([sys.executable, "-c", "import work; work.fa()"], check=True)


        def test_dash_m():
            subprocess.run([sys.executable, "-m", "pkg.tool"], check=True)


        def test_other():
            subprocess.run([sys.executable, "-c", "import work; work.fc()"], check=True)
    """,
    )
    project.write("pkg/__init__.py", "")
    project.write(
        "pkg/tool.py",
        """
        import work


        def main():
            return work.fb()


        if __name__ == "__main__":
            main()
    """,
    )
    first_run(project)
    assert run(project).ran == set()
    edit(project, "unused")
    assert run(project).ran == set()
    edit(project, "fa")
    assert run(project).ran == {"test_kids.py::test_dash_c"}
    edit(project, "fb")
    assert run(project).ran == {"test_kids.py::test_dash_m"}
    project.replace("pkg/tool.py", "return work.fb()", "return work.fb() + 0")
    assert run(project).ran == {"test_kids.py::test_dash_m"}


@pytest.mark.parametrize("how", ["minimal", "pythonpath", "copy_without_ours"])
def test_subprocess_with_explicit_env(project, how) -> None:
    """`env=` without our variables: the engine adds them to the dict, the child is recorded.

    minimal: only PATH; pythonpath: the user's own PYTHONPATH (ours must be added to it);
    copy_without_ours: os.environ copied, then every TESTMON_WATCH_* and PYTHONPATH removed.
    """
    envs = {
        "minimal": '{"PATH": os.environ.get("PATH", "")}',
        "pythonpath": '{"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.getcwd()}',
        "copy_without_ours": "{k: v for k, v in os.environ.items()"
        ' if not k.startswith("TESTMON_WATCH") and k != "PYTHONPATH"}',
    }
    make_project(
        project,
        f"""
        import os
        import subprocess
        import sys


        def test_explicit_env():
            env = {envs[how]}
            subprocess.run([sys.executable, "-c", "import work; work.fa()"], env=env, check=True)


        def test_other():
            subprocess.run([sys.executable, "-c", "import work; work.fb()"], check=True)
    """,
    )
    first_run(project)
    assert run(project).ran == set()
    edit(project, "fa")
    result = run(project)
    assert result.ran == {"test_kids.py::test_explicit_env"}, (
        "the child started with an explicit env= was not recorded: "
        "its test is not selected after an edit of the code only the child ran\n" + result.text
    )


@pytest.mark.parametrize("flag", ["-E", "-I", "-S"])
def test_subprocess_python_ignoring_the_environment(project, flag) -> None:
    """`python -E/-I` ignores PYTHONPATH, `-S` skips site: our sitecustomize never runs.

    The child's code must still not be silently lost: either it is recorded or
    the test is marked to run again.
    """
    code = "import sys; sys.path.insert(0, '.'); import work; work.fa()"
    make_project(
        project,
        f"""
        import subprocess
        import sys


        def test_flagged():
            subprocess.run([sys.executable, {flag!r}, "-c", {code!r}], check=True)


        def test_other():
            assert True
    """,
    )
    first_run(project)
    plain = run(project)
    edit(project, "fa")
    edited = run(project)
    assert plain.ran == {"test_kids.py::test_flagged"} or edited.ran == {
        "test_kids.py::test_flagged"
    }, f"python {flag}: the child's code is lost (neither recorded nor rerun)\n" + edited.text


def test_recording_prints_nothing_in_the_child(project) -> None:
    """A recorded child's stderr is the program's own: tests that check it keep passing."""
    make_project(
        project,
        """
        import subprocess
        import sys


        def test_quiet_child():
            done = subprocess.run([sys.executable, "-c", "import work; work.fa()"],
                                  capture_output=True, text=True, check=True)
            assert done.stderr == ""
            assert done.stdout == ""
    """,
    )
    result = first_run(project)
    assert result.ran == {"test_kids.py::test_quiet_child"}


# -- 3. nested children ----------------------------------------------------------------------


def test_spawn_child_starting_a_fork_child(project) -> None:
    make_project(
        project,
        """
        import work
        from launch import in_children


        def test_nested():
            in_children(work.outer_fork, "spawn", "process")


        def test_flat():
            in_children(work.fa, "spawn", "process")
    """,
    )
    first_run(project)
    edit(project, "grand")
    assert run(project).ran == {"test_kids.py::test_nested"}


def test_subprocess_child_starting_a_multiprocessing_child(project) -> None:
    make_project(
        project,
        """
        import subprocess
        import sys


        NESTED = "import work; work.outer_spawn_from_subprocess()"


        def test_nested():
            subprocess.run([sys.executable, "-c", NESTED], check=True)


        def test_flat():
            subprocess.run([sys.executable, "-c", "import work; work.fa()"], check=True)
    """,
    )
    first_run(project)
    edit(project, "grand")
    assert run(project).ran == {"test_kids.py::test_nested"}


# -- 4. back-to-back tests -------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_back_to_back_tests_each_credited_with_their_own_children(project, method) -> None:
    make_project(
        project,
        f"""
        import work
        from launch import in_children


        def test_1():
            in_children(work.fa, {method!r}, "pool")


        def test_2():
            in_children(work.fb, {method!r}, "pool")


        def test_3():
            in_children(work.fc, {method!r}, "process")
    """,
    )
    first_run(project)
    for fn, nodeid in [("fb", "test_2"), ("fa", "test_1"), ("fc", "test_3")]:
        edit(project, fn)
        result = run(project)
        assert result.ran == {f"test_kids.py::{nodeid}"}, (fn, result.text)


def test_pool_shared_across_tests_never_misses(project) -> None:
    """A module-scoped pool: its workers start under the fixture, not the test.

    What they run for a test is credited to the fixture (every test using it is
    selected) or to the test; never lost.
    """
    make_project(
        project,
        """
        import multiprocessing

        import pytest

        import work


        @pytest.fixture(scope="module")
        def pool():
            with multiprocessing.get_context("spawn").Pool(2) as pool:
                yield pool


        def test_1(pool):
            assert pool.map(work.fa, [1, 2]) == [2, 3]


        def test_2(pool):
            assert pool.map(work.fb, [1, 2]) == [3, 4]


        def test_no_pool():
            assert True
    """,
    )
    first_run(project)
    edit(project, "fb")
    result = run(project)
    assert "test_kids.py::test_2" in result.ran, result.text
    assert "test_kids.py::test_no_pool" not in result.ran


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_an_executor_never_shut_down_is_trusted_and_selects(project, method) -> None:
    """A ProcessPoolExecutor its test never shuts down: its workers outlive the session.

    They report before each result, as pool workers do, so the test is trusted
    (a no-change run runs nothing) and an edit of what they ran selects it.
    """
    make_project(
        project,
        f"""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        import work


        def test_executor():
            ctx = multiprocessing.get_context("{method}")
            pool = ProcessPoolExecutor(2, mp_context=ctx)
            assert list(pool.map(work.fa, [1, 2])) == [2, 3]


        def test_other():
            assert True
    """,
    )
    first_run(project)
    assert run(project).ran == set()
    edit(project, "fa")
    assert run(project).ran == {"test_kids.py::test_executor"}


def test_child_reporting_after_its_test_ended(project) -> None:
    """A child still running when its test ends: its late report is credited to that test."""
    make_project(
        project,
        """
        import multiprocessing
        import time

        import work

        children = []


        def test_starts_and_leaves():
            p = multiprocessing.get_context("spawn").Process(target=work.late)
            p.start()
            children.append(p)


        def test_next():
            children[0].join(30)  # the child ends while this test runs
            assert children[0].exitcode == 0
            time.sleep(0.2)
    """,
    )
    first_run(project)
    plain = run(project)
    edit(project, "fa")
    edited = run(project)
    if plain.ran:
        assert plain.ran == {"test_kids.py::test_starts_and_leaves"}, plain.text
    assert "test_kids.py::test_starts_and_leaves" in edited.ran, edited.text
    assert "test_kids.py::test_next" not in edited.ran, edited.text
    assert plain.ran == set(), "a late report that arrived during the run was not merged"


def test_daemon_child_still_running_at_session_end(project) -> None:
    """Killed by multiprocessing at exit, after the session: recorded or rerun, never lost."""
    make_project(
        project,
        """
        import multiprocessing

        import work


        def test_leaves_a_daemon():
            ready = multiprocessing.get_context("spawn").Event()
            p = multiprocessing.get_context("spawn").Process(
                target=work.then_block, args=(ready,), daemon=True)
            p.start()
            assert ready.wait(60)


        def test_other():
            assert True
    """,
    )
    first_run(project)
    plain = run(project)
    assert plain.ran <= {"test_kids.py::test_leaves_a_daemon"}
    if not plain.ran:
        edit(project, "fa")
        edited = run(project)
        assert edited.ran == {"test_kids.py::test_leaves_a_daemon"}, (
            "the daemon child's code was lost\n" + edited.text
        )
    assert children_files(project) == []


# -- 5. pytest-xdist -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_under_xdist(project, method) -> None:
    pytest.importorskip("xdist")
    make_project(
        project,
        f"""
        import subprocess
        import sys

        import work
        from launch import in_children


        def test_1():
            in_children(work.fa, {method!r}, "process")


        def test_2():
            in_children(work.fb, {method!r}, "pool")


        def test_3():
            in_children(work.fc, {method!r}, "executor")


        def test_4():
            subprocess.run([sys.executable, "-c", "import work; work.grand()"], check=True)
    """,
    )
    first = run(project, "-n", "2")
    assert first.ret == 0, first.text
    assert len(first.ran) == 4
    assert run(project, "-n", "2").ran == set()
    for fn, nodeid in [("fb", "test_2"), ("grand", "test_4"), ("fc", "test_3"), ("fa", "test_1")]:
        edit(project, fn)
        result = run(project, "-n", "2")
        assert result.ran == {f"test_kids.py::{nodeid}"}, (fn, result.text)
    assert children_files(project) == []


# -- 6. faults -------------------------------------------------------------------------------

FAULTS = {
    # name: (test body, what must happen: "recorded" or "rerun")
    "sigterm": (
        """
        ready = ctx.Event()
        p = ctx.Process(target=work.then_block, args=(ready,))
        p.start()
        assert ready.wait(60)
        p.terminate()
        p.join()
        assert p.exitcode == -signal.SIGTERM
    """,
        "rerun",
    ),  # no SIGTERM handler (one can hang pools): lost, so the test reruns
    "sigkill": (
        """
        ready = ctx.Event()
        p = ctx.Process(target=work.then_block, args=(ready,))
        p.start()
        assert ready.wait(60)
        p.kill()
        p.join()
        assert p.exitcode == -signal.SIGKILL
    """,
        "rerun",
    ),
    "segfault": (
        """
        p = ctx.Process(target=work.then_segfault)
        p.start()
        p.join()
        assert p.exitcode == -signal.SIGSEGV
    """,
        "rerun",
    ),
    "os_exit": (
        """
        p = ctx.Process(target=work.then_exit)
        p.start()
        p.join()
        assert p.exitcode == 0
    """,
        "recorded",
    ),
}


@pytest.mark.parametrize("method", ["spawn", "fork"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_faulty_child_is_recorded_or_its_test_reruns(project, fault, method) -> None:
    body, expected = FAULTS[fault]
    project.write("work.py", WORK)
    project.write("test_kids.py", _fault_module(method, body))
    first_run(project)

    plain = run(project)
    if "test_kids.py::test_fault" in plain.ran:
        happened = "rerun"
        assert plain.ran == {"test_kids.py::test_fault"}, plain.text
    else:
        happened = "recorded"
        assert plain.ran == set(), plain.text
    # Either way, an edit of the code the child ran selects the test.
    edit(project, "fa")
    edited = run(project)
    assert edited.ran == {"test_kids.py::test_fault"}, edited.text
    assert happened == expected, f"{fault}/{method}: expected {expected}, engine did {happened}"


def _fault_module(method: str, body: str) -> str:
    lines = body.strip("\n").splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    test_body = "\n".join("    " + line[indent:] for line in lines)
    return (
        "import multiprocessing\nimport signal\n\nimport work\n\n"
        f"ctx = multiprocessing.get_context({method!r})\n\n\n"
        f"def test_fault():\n{test_body}\n\n\n"
        "def test_bystander():\n    assert True\n"
    )


# -- 7. leftover per-process files -----------------------------------------------------------


def test_no_children_files_after_a_normal_run(project) -> None:
    make_project(
        project,
        """
        import subprocess
        import sys

        import work
        from launch import in_children


        def test_pool():
            in_children(work.fa, "spawn", "pool")


        def test_fork():
            in_children(work.fb, "fork", "process")


        def test_subprocess():
            subprocess.run([sys.executable, "-c", "import work; work.fc()"], check=True)
    """,
    )
    first_run(project)
    assert children_files(project) == []
    edit(project, "fa")
    run(project)
    assert children_files(project) == []


def test_stale_folder_of_a_killed_run_is_removed(project) -> None:
    make_project(
        project,
        """
        import os
        import sys
        import time

        import work
        from launch import in_children


        def test_blocks():
            in_children(work.fa, "spawn", "process")
            if os.environ.get("BLOCK_IN_TEST"):
                print("READY", file=sys.__stdout__, flush=True)
                time.sleep(3600)  # until the runner kills us
    """,
    )
    first_run(project)
    edit(project, "fa")  # so that the next run selects test_blocks
    env = dict(os.environ, BLOCK_IN_TEST="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--testmon", "-p", "no:cacheprovider", "-s", "-q"],
        cwd=project.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "READY" in line:
            break
    else:
        raise AssertionError(f"the run ended before blocking (exit {proc.wait()})")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    stale = project.path / ".testmondata-children" / str(proc.pid)
    assert stale.is_dir()  # the killed run's folder is left behind
    result = run(project)
    assert result.ret == 0, result.text
    assert not stale.exists()
    assert children_files(project) == []
