"""The results tree: tests grouped by file and class, a status mark each, failures first."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from testmon_watch.core.runs import TestPhase
from testmon_watch.ui.display import MARKS, STATUS_STYLE, Status
from testmon_watch.ui.state import TestState, WatchState, split_nodeid

__all__ = ["STATUS_STYLE", "ResultsTree", "Status", "group_label", "test_label"]


def test_label(test: TestState) -> Text:
    status = test.status
    label = Text()
    label.append(MARKS.get(status, "?"), STATUS_STYLE.get(status, ""))
    label.append(" ")
    label.append(split_nodeid(test.nodeid)[2], "dim" if status is TestPhase.UP_TO_DATE else "")
    if test.flaky:
        label.append(" flaky?", "magenta")
    return label


def group_label(name: str, tests: list[TestState], import_error: bool = False) -> Text:
    failing = sum(1 for t in tests if t.shows_failure)
    label = Text()
    if import_error:
        label.append("E ", "bold red")
    label.append(name, "bold")
    if import_error:
        label.append("  failed to import", "bold red")
    if failing:
        label.append(f"  {failing} failing", "red")
    if tests or not import_error:
        label.append(f"  {len(tests)} test{'s' if len(tests) != 1 else ''}", "dim")
    return label


class ResultsTree(Tree[str], inherit_bindings=False):
    """Leaves carry node ids; enter and space are left to the app (run keys)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("left", "collapse", "Collapse", show=False),
        Binding("right", "expand", "Expand", show=False),
        Binding("pageup", "page_up", show=False),
        Binding("pagedown", "page_down", show=False),
        Binding("home", "scroll_home", show=False),
        Binding("end", "scroll_end", show=False),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__("tests", **kwargs)  # type: ignore[arg-type]
        self.show_root = False
        self.guide_depth = 2
        self.leaves: dict[str, TreeNode[str]] = {}
        self.shown: list[str] = []  # node ids in display order

    def action_collapse(self) -> None:
        node = self.cursor_node
        if node is not None:
            (node if node.allow_expand and node.is_expanded else node.parent or node).collapse()

    def action_expand(self) -> None:
        if self.cursor_node is not None:
            self.cursor_node.expand()

    def rebuild(self, state: WatchState, name_filter: str = "", file_filter: str = "") -> None:
        """Regroup and resort everything, keeping the cursor on the same row if it is shown.

        When that row is filtered out the cursor lands on the first row, so it is
        never left below the end of a shorter list, nor on a hidden test.
        """
        keep = self.cursor_node.data if self.cursor_node is not None else None
        self.clear()
        self.leaves = {}
        self.shown = []
        rows: dict[str, TreeNode[str]] = {}
        broken = state.error_files
        for path, groups in state.grouped(name_filter, file_filter):
            tests = [t for _, ts in groups for t in ts]
            file_node = self.root.add(
                group_label(path or "(no file)", tests, path in broken),
                data="file:" + path,
                expand=True,
            )
            rows[file_node.data or ""] = file_node
            for cls, members in groups:
                parent = file_node
                if cls is not None:
                    parent = file_node.add(
                        group_label(cls, members), data=f"class:{path}::{cls}", expand=True
                    )
                    rows[parent.data or ""] = parent
                for test in members:
                    self.leaves[test.nodeid] = parent.add_leaf(test_label(test), data=test.nodeid)
                    self.shown.append(test.nodeid)
        rows.update(self.leaves)
        target = rows.get(keep) if keep is not None else None
        if target is None and keep is not None and rows:
            target = next(iter(self.leaves.values()), None) or next(iter(rows.values()))
        self.get_node_at_line(0)  # lay out the new lines now, so the cursor can go to one
        self.move_cursor(target)

    def update_labels(self, state: WatchState, nodeids: set[str]) -> None:
        """Cheap live update: only the labels of the tests that changed."""
        for nodeid in nodeids:
            node = self.leaves.get(nodeid)
            test = state.tests.get(nodeid)
            if node is not None and test is not None:
                node.set_label(test_label(test))

    def move_to(self, nodeid: str) -> bool:
        node = self.leaves.get(nodeid)
        if node is None:
            return False
        self.move_cursor(node)
        return True

    @property
    def cursor_data(self) -> str | None:
        """The row under the cursor: a node id, "file:<path>" or "class:<path>::<name>"."""
        node = self.cursor_node
        return node.data if node is not None else None

    @property
    def cursor_test(self) -> str | None:
        node = self.cursor_node
        if node is None or node.data is None or node.data.startswith(("file:", "class:")):
            return None
        return node.data
