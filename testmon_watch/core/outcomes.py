"""One word for a test's result across its setup, call and teardown reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def outcome_of(reports: Iterable[Any]) -> str:
    """passed | failed | error | skipped | xfailed | xpassed, from pytest TestReports.

    Reports are read by attribute (when, failed, skipped, wasxfail), so this
    module needs no pytest import. A failure outside the call phase is an error.
    """
    outcome = "passed"
    for report in reports:
        xfail = hasattr(report, "wasxfail")
        if report.failed:
            return "failed" if report.when == "call" else "error"
        if report.skipped:
            outcome = "xfailed" if xfail else "skipped"
        elif report.when == "call" and xfail:
            outcome = "xpassed"
    return outcome
