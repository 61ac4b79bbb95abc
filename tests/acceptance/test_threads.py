"""Threads that outlive the test that started them: their code is never "the session's".

A background reader (a daemon thread serving requests until the interpreter
exits, like a socket reader a test leaves running) executes code while other
tests run and between tests. Every step is made deterministic with events: a
request waits until the thread has served it, so the thread runs `recv()`
while test_b runs, and `between()` after test_c has finished and before
test_d starts (a conftest hook asks for it, in no test).

The rule (README, "How selection works"): a thread's lines go to the context
running at that moment (never the session), and also to the test that started
the thread, if one did; lines that a thread no test started runs while no test
runs go to the next test.
"""

from __future__ import annotations

import pytest

READER = """
    import queue
    import threading

    requests = queue.Queue()
    results = {}
    started = []


    def serve():
        while True:
            name, done = requests.get()
            results[name] = HANDLERS[name]()
            done.set()


    def start():
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        started.append(thread)


    def ask(name):
        if not started:
            raise RuntimeError("the reader is not running")
        done = threading.Event()
        requests.put((name, done))
        assert done.wait(60), "the reader did not answer"
        return results[name]


    def hello():
        return "hello"


    def recv():
        return "data"


    def between():
        return "gap"


    HANDLERS = {"hello": hello, "recv": recv, "between": between}
"""

# Asks the reader to run between() after test_c, while no test runs (in the process
# that ran test_c: under xdist the controller reports it too).
CONFTEST = """
    import pytest

    import reader


    def pytest_runtest_logfinish(nodeid, location):
        if nodeid.endswith("::test_c") and reader.started:
            reader.ask("between")
{fixture}
"""

SESSION_FIXTURE = """

    @pytest.fixture(scope="session")
    def server():
        reader.start()
"""

# test_a starts the thread itself: it keeps running after test_a returns.
TESTS_STARTED_BY_A = """
    import reader


    def test_a():
        reader.start()
        assert reader.ask("hello") == "hello"


    def test_b():
        assert reader.ask("recv") == "data"


    def test_c():
        assert True


    def test_d():
        assert True
"""

# The thread is started by a session-scoped fixture, in no test of its own.
TESTS_WITH_SESSION_SERVER = """
    import reader


    def test_a(server):
        assert reader.ask("hello") == "hello"


    def test_b(server):
        assert reader.ask("recv") == "data"


    def test_c():
        assert True


    def test_d(server):
        assert True
"""

EDITS = {
    "hello": ('return "hello"', 'return "HELLO"'),
    "recv": ('return "data"', 'return "DATA"'),
    "between": ('return "gap"', 'return "GAP"'),
}


def _record(project, tests: str, fixture: str) -> None:
    project.write("reader.py", READER)
    project.write("conftest.py", CONFTEST.format(fixture=fixture))
    project.write("test_reader.py", tests)
    run = project.first_run()
    assert run.ran == {f"test_reader.py::test_{name}" for name in "abcd"}


def _selected_after_editing(project, function: str) -> set[str]:
    old, new = EDITS[function]
    project.replace("reader.py", old, new)
    run = project.run()
    return {nodeid.partition("::")[2] for nodeid in run.ran}


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        # Run by the thread while test_a ran.
        ("hello", {"test_a"}),
        # Run by the thread while test_b ran: test_b saw it, test_a started the thread.
        ("recv", {"test_a", "test_b"}),
        # Run by the thread between test_c and test_d: its owner only, not the session
        # (which would select all four).
        ("between", {"test_a"}),
    ],
)
def test_a_thread_started_by_a_test_is_credited_to_that_test(
    project, function: str, expected: set[str]
) -> None:
    _record(project, TESTS_STARTED_BY_A, fixture="")
    assert _selected_after_editing(project, function) == expected


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("hello", {"test_a"}),
        ("recv", {"test_b"}),
        # No test started the thread and none ran: the next test to start, never the session.
        ("between", {"test_d"}),
    ],
)
def test_a_thread_started_by_a_session_fixture_is_credited_to_the_running_test(
    project, function: str, expected: set[str]
) -> None:
    _record(project, TESTS_WITH_SESSION_SERVER, fixture=SESSION_FIXTURE)
    assert _selected_after_editing(project, function) == expected


def test_under_xdist_a_thread_outliving_its_test_is_merged_into_it(project) -> None:
    """The owner's late lines travel from the worker with its session recording."""
    project.write("reader.py", READER)
    project.write("conftest.py", CONFTEST.format(fixture=""))
    project.write("test_reader.py", TESTS_STARTED_BY_A)
    # One worker: test_b needs the thread test_a started in the same process.
    run = project.run("-n", "1")
    assert run.ret == 0, run.text
    old, new = EDITS["between"]
    project.replace("reader.py", old, new)
    assert project.run("-n", "1").ran == {"test_reader.py::test_a"}
