"""The suite's own rules (tests/tiers.py): the slow tier runs only with --run-slow, and a default-tier test
over the time limit fails the run with the list of offenders."""

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SUITE = '''
import time

import pytest


def test_quick():
    pass


def test_sleepy():
    time.sleep(0.5)


@pytest.mark.slow
def test_slow_and_sleepy():
    time.sleep(0.5)
'''


@pytest.fixture
def run(pytester, monkeypatch):
    """Run a small suite in a fresh pytest process with the tiers plugin (not this suite's conftest)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_suite=SUITE)
    return lambda *args: pytester.runpytest_subprocess("-p", "tests.tiers", "-p", "no:cacheprovider", "-rs", *args)


def test_the_slow_tier_is_skipped_with_a_reason_that_says_how_to_run_it(run):
    result = run()
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*slow tier*run with --run-slow*"])
    assert result.ret == 0


def test_a_default_tier_test_over_the_limit_fails_the_run_and_is_named(run):
    result = run("--max-test-seconds", "0.3")
    result.assert_outcomes(passed=2, skipped=1)  # every test passed, the run did not
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*tests over 0.3 s in the default tier*", "*s  test_suite.py::test_sleepy"])
    assert "test_quick" not in result.stdout.str().split("default tier")[-1].split("Make each")[0]


def test_run_slow_runs_both_tiers_and_sets_no_limit(run):
    result = run("--run-slow", "--max-test-seconds", "0.3")
    result.assert_outcomes(passed=3)
    assert result.ret == 0 and "tests over" not in result.stdout.str()


def test_a_limit_of_zero_turns_the_check_off(run):
    assert run("--max-test-seconds", "0").ret == 0
