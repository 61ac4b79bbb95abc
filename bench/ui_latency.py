"""The terminal app under a flood: key-to-effect latency and frames while 2,000 results stream in.

    .venv/bin/python bench/ui_latency.py [--tests 2000] [--floods 5] [--seconds 1.0]

The real `TestmonWatchApp` runs headless (`App.run_test`, 140x40) on a real but
unstarted `WatchSession`. A producer thread plays a fast worker: it encodes every
protocol message to its JSON line and decodes it again (as the session's reader
thread does), then hands it to `app.pump.listener`, the listener the app gives the
session, so events take the app's own path (EventPump -> EventsPending -> one
coalesced flush at most every 50 ms -> WatchState -> tree, status, summary).
A run is RunRequested, RunStarted with N selected tests, then TestStarted and
TestFinished for each test, paced so all N finish within `--seconds`, then
RunFinished and RunDone.

Keys go in through the headless driver (`driver.send_message`, as `Pilot.press`
does), one at a time, in a loop: `j` x5, `/`, `1`, `2`, `escape`. The latency of a
key is the time from sending it to the first frame rendered after its effect
holds: for `j` the tree's cursor-down action ran; for `/` the filter box has focus;
for a typed character the name filter holds the typed text (the tree is rebuilt in
the same handler); for `escape` the filter is cleared. A frame is one call of
`App._display` (the compositor rendered the screen's changes; headless, the
terminal write is skipped, the render is not).

Scenarios, each with the same keys:

- idle: 2,000 tests in the tree from an earlier run, nothing running;
- first run: 2,000 tests new to the app stream in (the tree grows at every flush,
  the worst case for redraws);
- rerun: 2,000 known tests run again (queued -> running -> passed).

Prints median and p95 per scenario and key kind, frames and flushes per flood,
and writes bench/results-ui.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import textual  # noqa: E402
from textual import events  # noqa: E402
from textual.widgets import Input  # noqa: E402

from testmon_watch.config import WatchConfig  # noqa: E402
from testmon_watch.core.outcomes import Outcome, RunMode  # noqa: E402
from testmon_watch.core.reasons import ChangedFile, Reason, ReasonKind  # noqa: E402
from testmon_watch.core.runs import Run  # noqa: E402
from testmon_watch.session import Listener, RunDone, RunRequested, WatchSession  # noqa: E402
from testmon_watch.ui.app import TestmonWatchApp  # noqa: E402
from testmon_watch.ui.widgets.results import ResultsTree  # noqa: E402
from testmon_watch.wire.worker_protocol import (  # noqa: E402
    RunFinished,
    RunStarted,
    SelectedTest,
    TestFinished,
    TestStarted,
    WorkerReady,
    decode,
    encode,
)

SIZE = (140, 40)
BULK_PRICE = Reason(ReasonKind.CHANGED, "shop/pricing.py", blocks=("bulk_price",))
KEYS = ["j", "j", "j", "j", "j", "slash", "1", "2", "escape"]
KIND = {
    "j": "j (cursor)",
    "slash": "/ (open filter)",
    "1": "typing in filter",
    "2": "typing in filter",
    "escape": "escape (clear filter)",
}
GAP = 0.01  # seconds between a key's effect and the next key (a fast typist: 100 keys/s)
KEY_TIMEOUT = 10.0
FAILURE = """\
    def test_it():
>       assert compute() == 6
E       assert 5 == 6

tests/test_x.py:3: AssertionError"""


@dataclass
class Scenario:
    name: str
    latencies: dict[str, list[float]] = field(default_factory=dict)
    frames: list[int] = field(default_factory=list)  # per flood
    flushes: list[int] = field(default_factory=list)
    feed_seconds: list[float] = field(default_factory=list)  # producer: first to last event
    shown_seconds: list[float] = field(default_factory=list)  # first event to last applied
    rebuilds: list[float] = field(default_factory=list)  # CPU seconds of one full tree rebuild

    def add(self, key: str, seconds: float) -> None:
        self.latencies.setdefault(KIND[key], []).append(seconds)


def nodeids(n: int) -> list[str]:
    return [f"tests/test_mod{i % 50:02d}.py::test_case_{i:04d}" for i in range(n)]


def wire(message: Any) -> Any:
    """Through the protocol as the reader thread sees it: one JSON line, decoded."""
    return decode(encode(message))


def produce(
    listener: Listener,
    run_id: str,
    ids: list[str],
    seconds: float,
    done: threading.Event,
    stamps: dict[str, float],
) -> None:
    """A fast worker's run: every message through JSON, all results within `seconds`."""
    stamps["first"] = time.perf_counter()
    listener(RunRequested(run_id, RunMode.AFFECTED, "shop/pricing.py"))
    listener(
        wire(
            RunStarted(
                run_id,
                "shop/pricing.py",
                [ChangedFile("shop/pricing.py", ("bulk_price",))],
                [SelectedTest(i, [BULK_PRICE]) for i in ids],
                0,
            )
        )
    )
    start = time.perf_counter()
    counts = {Outcome.PASSED: 0, Outcome.FAILED: 0}
    for index, nodeid in enumerate(ids):
        listener(wire(TestStarted(run_id, nodeid)))
        failed = index % 97 == 0
        outcome = Outcome.FAILED if failed else Outcome.PASSED
        counts[outcome] += 1
        listener(
            wire(
                TestFinished(
                    run_id,
                    nodeid,
                    outcome,
                    0.0004,
                    longrepr=FAILURE if failed else "",
                    location=[nodeid.split("::")[0], 1, "test"],
                )
            )
        )
        ahead = start + seconds * (index + 1) / len(ids) - time.perf_counter()
        if ahead > 0.002:
            time.sleep(ahead)
    finished = wire(RunFinished(run_id, 1 if counts[Outcome.FAILED] else 0, counts))
    listener(finished)
    listener(
        RunDone(
            run_id,
            "shop/pricing.py",
            finished,
            {},
            {"selection": 0.01, "first_result": 0.05, "done": seconds},
            Run(run_id),
        )
    )
    stamps["last"] = time.perf_counter()
    done.set()


class Bench:
    def __init__(self, app: TestmonWatchApp) -> None:
        self.app = app
        self.tree = app.query_one(ResultsTree)
        self.filter = app.query_one("#filter", Input)
        self.frames = 0
        self.moves = 0
        self.condition: Callable[[], bool] | None = None
        self.effect_at: float | None = None
        display = app._display

        def counting_display(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            if renderable is None:
                return
            self.frames += 1
            if self.condition is not None and self.effect_at is None and self.condition():
                self.effect_at = time.perf_counter()

        app._display = counting_display  # type: ignore[method-assign]
        move = self.tree.action_cursor_down

        def counting_move() -> None:
            move()
            self.moves += 1

        self.tree.action_cursor_down = counting_move  # type: ignore[method-assign]

    def effect(self, key: str, typed: str) -> Callable[[], bool]:
        app, moves = self.app, self.moves
        if key == "j":
            return lambda: self.moves > moves
        if key == "slash":
            return lambda: app.focused is self.filter
        if key == "escape":
            return lambda: app.name_filter == "" and not self.filter.display
        return lambda: app.name_filter == typed

    async def press(self, key: str, typed: str) -> float:
        """Send one key through the driver; seconds until a frame shows its effect."""
        driver = self.app._driver
        assert driver is not None
        self.effect_at = None
        self.condition = self.effect(key, typed)
        event = events.Key(key, key if len(key) == 1 else ("/" if key == "slash" else None))
        event.set_sender(self.app)
        sent = time.perf_counter()
        driver.send_message(event)
        while self.effect_at is None:
            if time.perf_counter() - sent > KEY_TIMEOUT:
                raise SystemExit(f"ui_latency: no effect of {key!r} after {KEY_TIMEOUT} s")
            await asyncio.sleep(0.0005)
        self.condition = None
        return self.effect_at - sent

    async def keys_until(
        self, scenario: Scenario, stop: Callable[[], bool], rounds: int | None = None
    ) -> None:
        """Press the key loop until `stop()` (or for `rounds` loops when idle)."""
        typed = ""
        done_rounds = 0
        while True:
            for key in KEYS:
                if key == "j" and stop():  # only with the filter closed
                    return
                if key == "j" and self.tree.cursor_line >= self.tree.last_line - 1:
                    self.tree.cursor_line = 0  # at the bottom `j` would change nothing
                    await asyncio.sleep(0.05)
                typed = typed + key if key in ("1", "2") else ("" if key == "escape" else typed)
                scenario.add(key, await self.press(key, typed))
                await asyncio.sleep(GAP)
            done_rounds += 1
            if rounds is not None and done_rounds >= rounds:
                return

    def busy(self) -> bool:
        """Messages not yet applied, a flush pending or a run going on."""
        app = self.app
        return bool(app.pump._pending) or app._flush_timer is not None or app.state.running

    async def settle(self) -> None:
        while self.busy():  # noqa: ASYNC110 - the app's private state has no event to wait on
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)

    async def flood(self, scenario: Scenario, run_id: str, ids: list[str], seconds: float) -> None:
        done = threading.Event()
        stamps: dict[str, float] = {}
        frames, flushes = self.frames, self.app.flushes
        thread = threading.Thread(
            target=produce,
            daemon=True,
            args=(self.app.pump.listener, run_id, ids, seconds, done, stamps),
        )
        thread.start()
        await self.keys_until(scenario, done.is_set)
        while self.busy():  # noqa: ASYNC110 - as in settle()
            await asyncio.sleep(0.001)
        shown = time.perf_counter()
        thread.join()
        scenario.frames.append(self.frames - frames)
        scenario.flushes.append(self.app.flushes - flushes)
        scenario.feed_seconds.append(stamps["last"] - stamps["first"])
        scenario.shown_seconds.append(shown - stamps["first"])
        await self.settle()


async def measure(args: argparse.Namespace) -> list[Scenario]:
    root = Path(tempfile.mkdtemp(prefix="testmon-watch-ui-bench-"))
    (root / "pytest.ini").write_text("[pytest]\n")

    def make_session(listener: Listener) -> WatchSession:
        return WatchSession(root, listener, WatchConfig(), watch=False)

    ids = nodeids(args.tests)
    app = TestmonWatchApp(root, make_session, start_session=False, load_known=False)
    idle, first, rerun = Scenario("idle"), Scenario("first run"), Scenario("rerun")
    async with app.run_test(size=SIZE) as pilot:
        bench = Bench(app)
        app.pump.listener(WorkerReady(pid=1, python=platform.python_version()))
        await pilot.pause()
        for flood in range(args.floods):
            if flood:  # a fresh tree: the tests are new to the app again
                app.state.tests.clear()
                app.state.version += 1
                app.refresh_all(rebuild=True)
                await bench.settle()
            await bench.flood(first, f"first-{flood}", ids, args.seconds)
        for flood in range(args.floods):
            await bench.flood(rerun, f"rerun-{flood}", ids, args.seconds)
        await bench.keys_until(idle, lambda: False, rounds=args.idle_rounds)
        for _ in range(5):  # what a filter keystroke or a new test costs at most, CPU only
            cpu = time.process_time()
            app.refresh_all(rebuild=True)
            idle.rebuilds.append(time.process_time() - cpu)
            await bench.settle()
        await pilot.press("q")
    return [idle, first, rerun]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def table(scenarios: list[Scenario]) -> list[str]:
    rows = [
        "| scenario | key | presses | median ms | p95 ms | max ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for scenario in scenarios:
        every: list[float] = []
        for kind, values in scenario.latencies.items():
            every += values
            rows.append(
                f"| {scenario.name} | {kind} | {len(values)} | "
                f"{ms(statistics.median(values))} | {ms(p95(values))} | "
                f"{ms(max(values))} |"
            )
        rows.append(
            f"| **{scenario.name}** | **all keys** | **{len(every)}** | "
            f"**{ms(statistics.median(every))}** | **{ms(p95(every))}** | "
            f"**{ms(max(every))}** |"
        )
    return rows


def flood_table(scenarios: list[Scenario], tests: int) -> list[str]:
    rows = [
        "| flood | runs | events fed in (s) | all applied after (s) | frames per run | "
        "frames/s | flushes per run |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scenarios:
        if not s.frames:
            continue
        shown = statistics.median(s.shown_seconds)
        frames = statistics.median(s.frames)
        rows.append(
            f"| {s.name} ({tests} tests) | {len(s.frames)} | "
            f"{statistics.median(s.feed_seconds):.2f} | {shown:.2f} | {frames:.0f} | "
            f"{frames / shown:.0f} | {statistics.median(s.flushes):.0f} |"
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--floods", type=int, default=10, help="runs per flood scenario")
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="the producer feeds all results within this time"
    )
    parser.add_argument("--idle-rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-ui.md")
    args = parser.parse_args()
    os.environ.pop("TESTMON_DATAFILE", None)
    started = time.perf_counter()
    scenarios = asyncio.run(measure(args))
    elapsed = time.perf_counter() - started
    rows = table(scenarios)
    floods = flood_table(scenarios, args.tests)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    lines = [
        "# Terminal app: key latency while 2,000 results stream in",
        "",
        f"`.venv/bin/python bench/ui_latency.py --tests {args.tests} --floods {args.floods} "
        f"--seconds {args.seconds}` ({elapsed:.0f} s). Python {platform.python_version()}, "
        f"Textual {textual.__version__}, {os.cpu_count()} CPUs"
        + (f", load average {load[0]:.1f} at the end" if load else "")
        + ".",
        "",
        "Key-to-effect latency: from sending the key through the headless driver to the "
        "first frame rendered after its effect holds (see the module docstring). "
        "`idle`: the same 2,000 tests in the tree, nothing running. `first run`: 2,000 "
        "tests new to the app stream in; `rerun`: 2,000 known tests run again. Keys are "
        "pressed one after the other while the flood lasts (j x5, /, 1, 2, escape).",
        "",
        *rows,
        "",
        "Frames and batches per flood (medians). `events fed in`: the producer thread "
        "from the first to the last message; `all applied after`: until the app had "
        "applied the last one. A flush is one coalesced batch applied to the state.",
        "",
        *floods,
        "",
        f"One full rebuild of the results tree ({args.tests} tests, `refresh_all(rebuild=True)`, "
        "what the app does when the set or order of tests changes and on every filter "
        f"keystroke): median {ms(statistics.median(scenarios[0].rebuilds))} ms of CPU time "
        "(process time, so other load on the machine does not count).",
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
