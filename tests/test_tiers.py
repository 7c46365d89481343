"""The suite's own rules (tests/tiers.py): the slow tier runs only with --run-slow, and a default-tier test
over the time limit, and over it again when run alone, fails the run with the list of offenders."""

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SUITE = '''
import os
import time

import pytest


def test_quick():
    pass


def test_sleepy():
    time.sleep(0.5)


def test_slowed_once():
    # slow the first time only, as a test is on a busy machine: the lone run finds the marker
    marker = os.environ["SLOWED_ONCE_MARKER"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(0.5)


@pytest.mark.slow
def test_slow_and_sleepy():
    time.sleep(0.5)
'''


@pytest.fixture
def run(pytester, monkeypatch):
    """Run a small suite in a fresh pytest process with the tiers plugin (not this suite's conftest)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("SLOWED_ONCE_MARKER", str(pytester.path / "slowed-once"))
    pytester.makepyfile(test_suite=SUITE)
    return lambda *args: pytester.runpytest_subprocess("-p", "tests.tiers", "-p", "no:cacheprovider", "-rs", *args)


def test_the_slow_tier_is_skipped_with_a_reason_that_says_how_to_run_it(run):
    result = run()
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["*slow tier*run with --run-slow*"])
    assert result.ret == 0


def test_a_default_tier_test_over_the_limit_alone_too_fails_the_run_and_is_named(run):
    result = run("--max-test-seconds", "0.3")
    result.assert_outcomes(passed=3, skipped=1)  # every test passed, the run did not
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*tests over 0.3 s in the default tier*", "Make each cheaper*"])
    result.stdout.fnmatch_lines(["*s  test_suite.py::test_sleepy  -- over the limit alone too: *1 passed*"])
    result.stdout.fnmatch_lines(["*s  test_suite.py::test_slowed_once  -- under the limit alone (slowed by the "
                                 "machine): *1 passed*"])
    assert "test_quick" not in result.stdout.str().split("default tier")[-1]


def test_a_test_over_the_limit_only_on_a_busy_machine_passes_the_run(run):
    result = run("--max-test-seconds", "0.3", "-k", "not sleepy")
    result.assert_outcomes(passed=2, deselected=2)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*s  test_suite.py::test_slowed_once  -- under the limit alone (slowed by the "
                                 "machine)*"])
    assert "Make each cheaper" not in result.stdout.str()


def test_run_slow_runs_both_tiers_and_sets_no_limit(run):
    result = run("--run-slow", "--max-test-seconds", "0.3")
    result.assert_outcomes(passed=4)
    assert result.ret == 0 and "tests over" not in result.stdout.str()


def test_a_limit_of_zero_turns_the_check_off(run):
    assert run("--max-test-seconds", "0").ret == 0
