"""The suite's two tiers and its time limit, as a pytest plugin (loaded by tests/conftest.py).

- ``python -m pytest``: the default tier, every check of code behaviour.  Tests marked ``slow``
  (they re-measure a model's claims on real data, or run at real size) are skipped there with a
  reason that says how to run them.
- ``python -m pytest --run-slow``: both tiers.
- In the default tier a test whose setup, call and teardown together take longer than
  ``--max-test-seconds`` (60 s unless told) is run again alone, in a fresh pytest process, after the
  others; over the limit there too, it fails the run, with the list of offenders, so the next slow
  test is caught in the change that adds it: make it cheaper, or mark it ``slow`` and give it a fast
  guard in the default tier (docs/tests.md).  Under the limit alone, it was slowed by the machine
  (a busy CI machine once took 73 s over a test that takes 5 s): it is named, and the run passes.

Imports nothing but pytest and the standard library, so ``pytester`` can load it in a bare subprocess.
"""

import subprocess
import sys

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
    group.addoption("--lone-run", action="store_true", default=False,
                    help="this run is the guard's run of a test alone: a test over the limit fails it, "
                         "without another run")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: the slow tier (re-measures a model's claim on real data, or runs at "
                                       "real size); skipped unless --run-slow")
    if not config.getoption("--run-slow") and not hasattr(config, "workerinput"):  # not in an xdist worker
        guard = DurationGuard(config.getoption("--max-test-seconds"), config.getoption("--lone-run"))
        config.pluginmanager.register(guard, "duration-guard")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason=SLOW_REASON)
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


class DurationGuard:
    """Adds up each default-tier test's phases (their reports reach the controller under pytest-xdist
    too); at the end runs each test over the limit again alone and fails the run when one is over it
    there too."""

    def __init__(self, limit, lone_run=False):
        self.limit = limit
        self.lone_run = lone_run
        self.seconds = {}
        self.alone = {}  # nodeid -> (passed alone under the limit, what the lone run printed last)

    def pytest_runtest_logreport(self, report):
        if "slow" not in report.keywords:
            self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration

    def over_the_limit(self):
        """``[(seconds, nodeid)]`` of the default-tier tests over the limit in this run, slowest first."""
        if not self.limit or self.limit <= 0:
            return []
        return sorted(((s, nodeid) for nodeid, s in self.seconds.items() if s > self.limit), reverse=True)

    def offenders(self):
        """The tests over the limit in this run that were not under it when run again alone."""
        return [(s, nodeid) for s, nodeid in self.over_the_limit() if not self.alone.get(nodeid, (False,))[0]]

    def run_alone(self, config, nodeid):
        """Run ``nodeid`` in a fresh pytest process (one worker, the same plugins, this limit); its own
        guard fails it when it is over the limit there too."""
        args = [sys.executable, "-m", "pytest", nodeid, "-q", "-p", "no:cacheprovider",
                "--max-test-seconds", str(self.limit), "--lone-run"]
        invoked = list(config.invocation_params.args)
        for i, arg in enumerate(invoked[:-1]):
            if arg == "-p" and invoked[i + 1] != "no:cacheprovider":
                args += ["-p", invoked[i + 1]]
        if config.pluginmanager.hasplugin("xdist"):
            args += ["-n", "0"]
        done = subprocess.run(args, cwd=config.rootpath, capture_output=True, text=True)
        tail = done.stdout.strip().splitlines()[-1:] or done.stderr.strip().splitlines()[-1:] or ["(nothing printed)"]
        self.alone[nodeid] = (done.returncode == 0, tail[0])

    def pytest_sessionfinish(self, session, exitstatus):
        if exitstatus != pytest.ExitCode.OK:
            return
        for _, nodeid in [] if self.lone_run else self.over_the_limit():
            self.run_alone(session.config, nodeid)
        if self.offenders():
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        over = self.over_the_limit()
        if not over:
            return
        offenders = self.offenders()
        terminalreporter.section(f"tests over {self.limit:g} s in the default tier", sep="=", red=bool(offenders),
                                 bold=True)
        for seconds, nodeid in over:
            if nodeid in self.alone:
                under, tail = self.alone[nodeid]
                verdict = "under the limit alone (slowed by the machine)" if under else "over the limit alone too"
                note = f"  -- {verdict}: {tail}"
            else:
                note = "" if self.lone_run else "  -- not run again alone: the run failed"
            terminalreporter.line(f"{seconds:8.1f} s  {nodeid}{note}")
        if offenders:
            terminalreporter.line("Make each cheaper (a shared fixture, a smaller configuration) or mark it slow and "
                                  "give it a fast guard in the default tier (docs/tests.md).")
