"""Command-line entry point of `testmon-watch` (the watch loop is not built yet)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `testmon-watch` command and return its exit status."""
    del argv
    print(
        "testmon-watch: the watch loop is not built yet; use `pytest --testmon`",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
