"""The suite's two tiers and its time limit, as a pytest plugin (loaded by tests/conftest.py).

- ``python -m pytest``: the default tier, every check of code behaviour.  Tests marked ``slow``
  (they re-measure a model's claims on real data, or run at real size) are skipped there with a
  reason that says how to run them.
- ``python -m pytest --run-slow``: both tiers.
- In the default tier a test whose setup, call and teardown together take longer than
  ``--max-test-seconds`` (60 s unless told) fails the run, with the list of offenders, so the next
  slow test is caught in the change that adds it: make it cheaper, or mark it ``slow`` and give it a
  fast guard in the default tier (docs/tests.md).

Imports nothing but pytest, so ``pytester`` can load it in a bare subprocess.
"""

import pytest

SLOW_REASON = "slow tier (re-measures a claim on real data or runs at real size): run with --run-slow"
DEFAULT_MAX_TEST_SECONDS = 60.0


def pytest_addoption(parser):
    group = parser.getgroup("keras-arcface tiers")
    group.addoption("--run-slow", action="store_true", default=False,
                    help="also run the slow tier: tests marked slow (full-LFW accuracy, the zoo reproduction, "
                         "real-size runs)")
    group.addoption("--max-test-seconds", type=float, default=DEFAULT_MAX_TEST_SECONDS,
                    help="fail the run when a test of the default tier takes longer than this, setup and teardown "
                         "included (default %(default)s; 0 turns the check off)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: the slow tier (re-measures a model's claim on real data, or runs at "
                                       "real size); skipped unless --run-slow")
    if not config.getoption("--run-slow") and not hasattr(config, "workerinput"):  # not in an xdist worker
        config.pluginmanager.register(DurationGuard(config.getoption("--max-test-seconds")), "duration-guard")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason=SLOW_REASON)
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


class DurationGuard:
    """Adds up each default-tier test's phases (their reports reach the controller under pytest-xdist
    too) and fails the run when one is over the limit."""

    def __init__(self, limit):
        self.limit = limit
        self.seconds = {}

    def pytest_runtest_logreport(self, report):
        if "slow" not in report.keywords:
            self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration

    def offenders(self):
        """``[(seconds, nodeid)]`` of the default-tier tests over the limit, slowest first."""
        if not self.limit or self.limit <= 0:
            return []
        return sorted(((s, nodeid) for nodeid, s in self.seconds.items() if s > self.limit), reverse=True)

    def pytest_sessionfinish(self, session, exitstatus):
        if self.offenders() and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        over = self.offenders()
        if not over:
            return
        terminalreporter.section(f"tests over {self.limit:g} s in the default tier", sep="=", red=True, bold=True)
        for seconds, nodeid in over:
            terminalreporter.line(f"{seconds:8.1f} s  {nodeid}")
        terminalreporter.line("Make each cheaper (a shared fixture, a smaller configuration) or mark it slow and give "
                              "it a fast guard in the default tier (docs/tests.md).")
