"""docs/examples/testmon-ci.yml: valid YAML, the workflow docs/CI.md shows, wired as it says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from testmon_watch.paths import DATAFILE_ENV, DATAFILE_NAME

DOCS = Path(__file__).resolve().parents[1] / "docs"
EXAMPLE = DOCS / "examples" / "testmon-ci.yml"


def test_docs_ci_md_shows_the_example_file_verbatim() -> None:
    assert EXAMPLE.read_text() in (DOCS / "CI.md").read_text()


def test_the_example_is_plain_block_yaml() -> None:
    """What a YAML parser would reject first, for venvs without one."""
    for number, line in enumerate(EXAMPLE.read_text().splitlines(), 1):
        assert "\t" not in line, f"tab on line {number}"
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0, f"odd indentation on line {number}: {line!r}"
        assert line == line.rstrip(), f"trailing space on line {number}"


def workflow() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    loaded = yaml.safe_load(EXAMPLE.read_text())
    assert isinstance(loaded, dict)
    # YAML 1.1 reads the key `on` as true.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return loaded


def runs(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def uploads(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        step["with"]
        for step in job["steps"]
        if str(step.get("uses", "")).startswith("actions/upload-artifact@")
    ]


def test_main_records_in_shards_each_with_its_own_data_file() -> None:
    flow = workflow()
    assert flow["on"]["push"]["branches"] == ["main"]
    record = flow["jobs"]["record"]
    assert record["if"] == "github.event_name == 'push'"
    shards = record["strategy"]["matrix"]["shard"]
    splits = re.search(
        r"pytest --testmon --splits (\d+) --group \$\{\{ matrix\.shard \}\}", runs(record)
    )
    assert splits is not None, runs(record)
    assert shards == list(range(1, int(splits[1]) + 1))
    datafile = record["env"][DATAFILE_ENV]
    assert datafile.startswith(DATAFILE_NAME)
    (upload,) = uploads(record)
    assert upload["path"] == datafile
    assert upload["include-hidden-files"] is True


def test_combine_merges_every_shard_and_uploads_the_result() -> None:
    jobs = workflow()["jobs"]
    combine = jobs["combine"]
    assert combine["needs"] == "record"
    download = next(
        step["with"]
        for step in combine["steps"]
        if str(step.get("uses", "")).startswith("actions/download-artifact@")
    )
    assert download["pattern"] == "testmondata-shard-*"
    assert download["merge-multiple"] is True
    shard_files = jobs["record"]["env"][DATAFILE_ENV].replace("${{ matrix.shard }}", "*")
    command = f"testmon-watch combine {DATAFILE_NAME} {download['path']}/{shard_files}"
    assert command in runs(combine)
    (upload,) = uploads(combine)
    assert upload == upload | {"name": "testmondata", "path": DATAFILE_NAME}
    assert upload["include-hidden-files"] is True


def test_pull_requests_select_against_main_s_combined_file() -> None:
    flow = workflow()
    assert "pull_request" in flow["on"]
    assert flow["permissions"]["actions"] == "read"
    select = flow["jobs"]["select"]
    assert select["if"] == "github.event_name == 'pull_request'"
    script = runs(select)
    assert "--workflow testmon-ci.yml" in script
    assert "--name testmondata --dir .testmondata-baseline" in script
    assert "pytest --testmon --testmon-baseline=.testmondata-baseline/.testmondata" in script
