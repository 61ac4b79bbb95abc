"""Outcomes: which ones count as failing, which ones keep a test selected, parsing stored text."""

from __future__ import annotations

from dataclasses import dataclass

from testmon_watch.core.outcomes import FAILING, PYTEST_OUTCOMES, RUNS_AGAIN, Outcome, outcome_of


@dataclass
class Report:
    """The attributes outcome_of reads from a pytest TestReport."""

    when: str
    failed: bool = False
    skipped: bool = False


def test_a_failure_or_an_error_runs_again_an_xpass_does_not() -> None:
    assert {o for o in Outcome if o.runs_again} == RUNS_AGAIN == {Outcome.FAILED, Outcome.ERROR}
    assert RUNS_AGAIN < FAILING and Outcome.XPASSED.failing and not Outcome.XPASSED.runs_again
    assert RUNS_AGAIN <= set(PYTEST_OUTCOMES)


def test_stored_text_parses_back_and_unknown_text_is_an_error() -> None:
    for outcome in Outcome:
        assert Outcome.parse(str(outcome)) is outcome
    assert Outcome.parse("exploded") is Outcome.ERROR


def test_outcome_of_reports() -> None:
    ok = [Report("setup"), Report("call"), Report("teardown")]
    assert outcome_of(ok) is Outcome.PASSED
    assert outcome_of([Report("setup", failed=True)]) is Outcome.ERROR
    assert outcome_of([Report("setup"), Report("call", failed=True)]) is Outcome.FAILED
    assert outcome_of([Report("setup", skipped=True)]) is Outcome.SKIPPED
