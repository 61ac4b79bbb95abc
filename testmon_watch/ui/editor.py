"""Where `o` opens the editor: the failure's line, and the command for the user's editor."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from testmon_watch.ui.state import TestState

# "path.py:12:" at the start of a traceback line: where the failure is.
LOCATION = re.compile(r"^(\S+?\.py):(\d+):", re.MULTILINE)
LINE_FIRST_EDITORS = ("vi", "vim", "nvim", "nano", "emacs", "emacsclient", "micro", "kak", "joe")


def failure_location(test: TestState | None, root: Path) -> tuple[Path, int] | None:
    """The deepest project line of `test`'s traceback, else its definition, else its file."""
    if test is None:
        return None
    result = test.result
    if result is not None and result.longrepr:
        for path, line in reversed(LOCATION.findall(result.longrepr)):
            candidate = Path(path) if Path(path).is_absolute() else root / path
            if candidate.is_file():
                return candidate, int(line)
    if result is not None and result.location:
        path, line = result.location[0], result.location[1] or 1
        return root / str(path), int(line)
    file = test.nodeid.split("::", 1)[0]
    return (root / file, 1) if (root / file).is_file() else None


def editor_command(template: str | None, file: Path, line: int) -> list[str]:
    """The command that opens `file` at `line`: the configured template, else $VISUAL/$EDITOR."""
    if template:
        return [
            part.replace("{file}", str(file)).replace("{line}", str(line))
            for part in shlex.split(template)
        ]
    editor = shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")
    name = Path(editor[0]).name
    if name in ("code", "codium", "subl", "zed"):
        return [*editor, "-g" if name in ("code", "codium") else "", f"{file}:{line}"]
    if name in LINE_FIRST_EDITORS:
        return [*editor, f"+{line}", str(file)]
    return [*editor, str(file)]
