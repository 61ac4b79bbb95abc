"""End to end in a real terminal: the `testmon-watch` command in tmux on a copy of examples/shop.

Break `bulk_price`, see its test fail in the pane; fix it, see it pass; press `c` and
read the exported `.coverage` with `coverage report`; press `q` and check that the
command ended and left no worker behind. The screen is awaited by polling
`tmux capture-pane` with a deadline per step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .e2e_support import HEADER_COUNT, HEADER_WORDS, IMPORT_ERROR

pytestmark = pytest.mark.slow

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
WIDTH, HEIGHT = 160, 48
STEP = 60.0  # seconds per step; each poll is short, the loop ends as soon as the screen holds
POLL = 0.1
TEST = "test_bulk_price_at_threshold_gets_discount"
GOOD = "total = total * BULK_FACTOR"
BAD = "total = total * BULK_FACTOR * 2"


def command() -> list[str]:
    """The installed console script next to the interpreter, else `python -m testmon_watch.cli`."""
    script = Path(sys.executable).with_name("testmon-watch")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "testmon_watch.cli"]


class Tmux:
    """One detached tmux session on its own server socket (never the user's server)."""

    def __init__(self, cwd: Path, argv: list[str], status: Path) -> None:
        self.socket = f"testmon-watch-test-{uuid.uuid4().hex[:8]}"
        self.target = "app"
        self.socket_path: Path | None = None
        # COLUMNS/LINES (set to 80x24 in pytest-xdist workers) would override the
        # pane's real size for the app.
        dropped = ("TESTMON_DATAFILE", "TMUX", "COLUMNS", "LINES")
        env = {k: v for k, v in os.environ.items() if k not in dropped}
        env["TERM"] = "xterm-256color"
        # A shell in the pane runs the command and writes its exit status to `status`:
        # tmux 3.3 sometimes leaves its pane's exited process a zombie, status unknown.
        # remain-on-exit keeps the pane, to see it dead after `q`.
        self.tmux(
            "new-session",
            "-d",
            "-x",
            str(WIDTH),
            "-y",
            str(HEIGHT),
            "-s",
            self.target,
            "-c",
            str(cwd),
            "sh",
            "-c",
            'status=$1; shift; "$@"; echo $? > "$status"',
            "sh",
            str(status),
            *argv,
            env=env,
        )
        self.tmux("set-option", "-t", self.target, "remain-on-exit", "on")
        self.socket_path = Path(self.tmux("display-message", "-p", "#{socket_path}").strip())

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, env=env, timeout=30
        )
        if done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.target)

    def pane(self, fmt: str) -> str:
        return self.tmux("display-message", "-p", "-t", self.target, fmt).strip()

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.target, *keys)

    def wait(self, condition: Callable[[str], bool], what: str, timeout: float = STEP) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}; the pane shows:\n{screen}"
                )
            time.sleep(POLL)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)
        if self.socket_path is not None:  # kill-server leaves the socket file
            self.socket_path.unlink(missing_ok=True)


def line_of(screen: str, name: str) -> str:
    """The results tree's row for test `name` ('' when it is not shown)."""
    for line in screen.splitlines():
        left = line.split("││", 1)[0]
        if f" {name}" in left and not left.rstrip(" │").endswith("tests"):
            return left
    return ""


def marked(name: str, mark: str) -> Callable[[str], bool]:
    return lambda screen: f"{mark} {name}" in line_of(screen, name)


def workers_for(root: Path) -> list[str]:
    """Command lines of worker servers still running on `root`."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True
    ).stdout  # -ww: full command lines, not cut at 80 columns
    return [
        line.strip()
        for line in out.splitlines()
        if "testmon_watch.worker.server" in line and f"--root {root}" in line
    ]


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(
        SHOP,
        root,
        ignore=shutil.ignore_patterns(
            ".testmondata*", ".coverage*", "__pycache__", ".pytest_cache"
        ),
    )
    return root.resolve()


@pytest.fixture
def exit_status(tmp_path: Path) -> Path:
    return tmp_path / "exit-status"


@pytest.fixture
def tmux(shop: Path, exit_status: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    if shutil.which("ps") is None:
        pytest.skip("ps is not installed")
    session = Tmux(shop, command(), exit_status)
    try:
        yield session
    finally:
        session.close()
        deadline = time.monotonic() + 10  # a killed server leaves the worker to its own exit
        while workers_for(shop) and time.monotonic() < deadline:
            time.sleep(POLL)


def test_break_fix_export_quit_in_tmux(shop: Path, tmux: Tmux, exit_status: Path) -> None:
    screen = tmux.wait(lambda s: "30 passed" in s and "worker warm" in s, "the first run")
    assert marked(TEST, "✓")(screen), screen
    assert "watching" in screen and "Run affected" in screen  # status bar and footer
    # The watcher is up once the status bar counts the files it watches.
    tmux.wait(lambda s: "watching 0 files" not in s, "the watcher")

    pricing = shop / "shop" / "pricing.py"
    source = pricing.read_text()
    assert GOOD in source
    pricing.write_text(source.replace(GOOD, BAD))
    screen = tmux.wait(marked(TEST, "✗"), f"{TEST} to fail")
    screen = tmux.wait(lambda s: "worker warm" in s, "the run to end")
    assert "failed" in screen.splitlines()[0], screen  # the summary line counts it
    assert "last: shop/pricing.py" in screen, screen
    assert "up to date" in screen, screen  # deselected tests kept their result

    pricing.write_text(source)
    tmux.wait(marked(TEST, "✓"), f"{TEST} to pass again")
    screen = tmux.wait(
        lambda s: "worker warm" in s and "failed" not in s.splitlines()[0],
        "the run to end with no failure",
    )
    assert "✗" not in screen, screen

    coverage_file = shop / ".coverage"
    assert not coverage_file.exists()
    tmux.keys("c")
    tmux.wait(lambda s: "wrote" in s and coverage_file.is_file(), "the export notification")
    report = subprocess.run(
        [sys.executable, "-m", "coverage", "report"],
        cwd=shop,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert report.returncode == 0, report.stdout + report.stderr
    assert "shop/pricing.py" in report.stdout and "shop/cart.py" in report.stdout, report.stdout
    assert "tests/test_pricing.py" in report.stdout, report.stdout

    assert workers_for(shop), "the app's worker should be running before q"
    tmux.keys("q")
    deadline = time.monotonic() + STEP
    while not (status := exit_status.read_text().strip() if exit_status.exists() else ""):
        assert time.monotonic() < deadline, f"testmon-watch did not exit:\n{tmux.screen()}"
        time.sleep(POLL)
    assert status == "0", f"testmon-watch exited with {status}:\n{tmux.screen()}"
    while tmux.pane("#{pane_dead}") != "1":
        assert time.monotonic() < deadline, "the pane's shell did not end"
        time.sleep(POLL)
    deadline = time.monotonic() + 10  # stop() reaps the worker before the app exits
    while workers_for(shop):
        assert time.monotonic() < deadline, f"worker left behind: {workers_for(shop)}"
        time.sleep(POLL)


# -- issue #12: the screen tells the truth, in a real terminal -------------------------------------

SHOP_TESTS = 30
# Marks that claim a result (✓ passed, · up to date, ✗ failed, E error ...).
RESULT_MARKS = "✓✗EsxX!T·"


def header_total(screen: str) -> tuple[int, dict[str, int]]:
    """The summary line's counts of tests (the words e2e_support knows) and their sum."""

    counts: dict[str, int] = {}
    for number, word in HEADER_COUNT.findall(screen.splitlines()[0].lower()):
        state = HEADER_WORDS.get(word)
        if state is not None:
            counts[state] = counts.get(state, 0) + int(number)
    return sum(counts.values()), counts


def row_mark(screen: str, name: str) -> str:
    row = line_of(screen, name)
    before = row.split(f" {name}", 1)[0].rstrip()
    return before[-1:] if before else ""


def file_row(screen: str, path: str) -> str:
    """The tree's row for file `path` ('' when it is not shown)."""
    for line in screen.splitlines():
        left = line.split("││", 1)[0]
        if left.startswith("│") and path in left and "::" not in left:  # inside the tree's box
            return left
    return ""


def idle(screen: str) -> bool:
    return "worker warm" in screen and "▶" not in screen


def test_syntax_error_and_fix_in_tmux(shop: Path, tmux: Tmux) -> None:
    """A syntax error in shop/pricing.py: the 3 modules importing it show an error, their tests
    "not run" (no ✓, never counted passed); the header adds up to 30. The fix clears it."""
    tmux.wait(lambda s: f"{SHOP_TESTS} passed" in s and "worker warm" in s, "the first run")
    tmux.wait(lambda s: "watching 0 files" not in s, "the watcher")
    pricing = shop / "shop" / "pricing.py"
    source = pricing.read_text()
    pricing.write_text(source.replace("def bulk_price(", "def bulk_price((", 1))
    screen = tmux.wait(
        lambda s: idle(s) and "last: shop/pricing.py" in s and row_mark(s, TEST) != "✓",
        "the run after the syntax error",
    )
    assert row_mark(screen, TEST) not in RESULT_MARKS, screen
    total, counts = header_total(screen)
    assert total == SHOP_TESTS, f"header counts {counts}:\n{screen}"
    # cart 6, pricing 9, promotions 5
    assert counts.get("not run") == 20, f"header counts {counts}:\n{screen}"
    assert "passed" not in counts, f"nothing ran, yet:\n{screen}"
    for module in ("tests/test_pricing.py", "tests/test_cart.py", "tests/test_promotions.py"):
        assert IMPORT_ERROR.search(file_row(screen, module)), f"{module}:\n{screen}"
    assert not IMPORT_ERROR.search(file_row(screen, "tests/test_catalog.py")), screen

    pricing.write_text(source)
    screen = tmux.wait(lambda s: idle(s) and row_mark(s, TEST) == "✓", "the run after the fix")
    total, counts = header_total(screen)
    assert total == SHOP_TESTS, f"header counts {counts}:\n{screen}"
    assert "not run" not in counts and "error" not in counts, f"header counts {counts}:\n{screen}"
    for module in ("tests/test_pricing.py", "tests/test_cart.py", "tests/test_promotions.py"):
        assert not IMPORT_ERROR.search(file_row(screen, module)), f"{module}:\n{screen}"


SLOW_TEST = """\
import os
import time

GATE = {gate!r}
LABEL = "one"


def test_gated():
    deadline = time.monotonic() + 120
    while not os.path.exists(GATE):
        assert time.monotonic() < deadline, "the gate never opened"
        time.sleep(0.01)


def test_after_gate():
    assert LABEL
"""


@pytest.fixture
def gate(tmp_path: Path, shop: Path) -> Iterator[Path]:
    """tests/test_gate.py in the shop copy waits on a file outside the project (present now)."""
    path = tmp_path / "gate"
    path.touch()
    (shop / "tests" / "test_gate.py").write_text(SLOW_TEST.format(gate=str(path)))
    yield path
    path.touch()  # whatever happened, the test does not wait any longer


def test_cancel_in_tmux(shop: Path, gate: Path, tmux: Tmux) -> None:
    """x while test_gated waits: it and the test after it show cancelled, not their last ✓."""
    total = SHOP_TESTS + 2
    tmux.wait(lambda s: f"{total} passed" in s and "worker warm" in s, "the first run")
    tmux.wait(lambda s: "watching 0 files" not in s, "the watcher")
    gate.unlink()
    test_file = shop / "tests" / "test_gate.py"
    test_file.write_text(test_file.read_text().replace('LABEL = "one"', 'LABEL = "two"'))
    tmux.wait(lambda s: row_mark(s, "test_gated") == "▶", "test_gated to be running")
    tmux.keys("x")
    screen = tmux.wait(lambda s: idle(s) and row_mark(s, "test_gated") != "▶", "the cancel")
    for name in ("test_gated", "test_after_gate"):
        assert row_mark(screen, name) not in RESULT_MARKS, f"{name}:\n{screen}"
    count, counts = header_total(screen)
    assert counts.get("cancelled") == 2, f"header counts {counts}:\n{screen}"
    assert count == total, f"header counts {counts}:\n{screen}"


PROMOTION_TESTS = (
    "test_registry_lists_promotions",
    "test_promotion_never_raises_price",
    "test_five_off_never_goes_negative",
)


def test_deleted_file_in_tmux(shop: Path, tmux: Tmux) -> None:
    """tests/test_promotions.py deleted: its row and its tests leave the pane; 25 tests remain."""
    screen = tmux.wait(
        lambda s: f"{SHOP_TESTS} passed" in s and "worker warm" in s, "the first run"
    )
    tmux.wait(lambda s: "watching 0 files" not in s, "the watcher")
    assert "5 tests" in file_row(screen, "tests/test_promotions.py"), screen
    (shop / "tests" / "test_promotions.py").unlink()
    screen = tmux.wait(
        lambda s: idle(s) and "last: tests/test_promotions.py" in s, "the run after the deletion"
    )
    screen = tmux.wait(
        lambda s: "test_promotions.py" not in file_row(s, "test_promotions.py"),
        "the file's row to go",
        timeout=10,
    )
    tree = [line.split("││", 1)[0] for line in screen.splitlines()[1:] if "last:" not in line]
    for name in ("test_promotions.py", *PROMOTION_TESTS):
        assert not any(name in line for line in tree), f"{name} is still shown:\n{screen}"
    total, counts = header_total(screen)
    assert total == SHOP_TESTS - 5, f"header counts {counts}:\n{screen}"
