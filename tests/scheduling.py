"""How `make test` hands test files to pytest-xdist's two workers: `--dist loadfile` (a file's
tests on one worker, sharing its module fixtures, its warehouse among them), with the long
benchmarks spread over both workers and the longest units of work handed out first."""

from __future__ import annotations

from collections import OrderedDict

# Test files whose tests are independent of each other and long: under `--dist loadfile`, each of
# their tests goes to whichever worker is free, where every other file's tests keep to one worker
# (sharing its module fixtures, its warehouse among them)
SPREAD_OVER_WORKERS = {"tests/benchmarks/test_benchmarks_run.py"}
BENCHMARK = "tests/benchmarks/test_benchmarks_run.py::test_benchmark_runs_small_and_reports_json"

# The longest units of work (a file, or a test of SPREAD_OVER_WORKERS), in seconds on one worker
# as measured on 2026-12-06 (2 workers on 2 cores, `--durations=0`): handed out first, longest
# first, so that no long one starts when the other worker is nearly done (the suite's wall time
# is then close to half its work); every other unit follows in the session's random order. A
# weight only orders the work: a unit missing here, or slower than written, still runs.
SECONDS_PER_UNIT = {
    "tests/dags/test_dag_runs.py": 170,
    BENCHMARK + "[dag_run.py]": 120,
    "tests/dags/test_airflow_services.py": 120,
    "tests/warehouse/test_build_plan.py": 100,
    "tests/e2e/test_deidentification.py": 90,
    "tests/dags/test_build_watcher.py": 85,
    BENCHMARK + "[incremental.py]": 80,
    "tests/warehouse/test_migrations.py": 80,
    "tests/monitoring/test_backpressure.py": 55,
    "tests/monitoring/test_recovery.py": 50,
    "tests/expectations/test_gate.py": 45,
    BENCHMARK + "[gate.py]": 40,
    "tests/e2e/test_thin_path.py": 35,
    BENCHMARK + "[landing.py]": 30,
    "tests/docs/test_docs_site.py": 30,
    "tests/e2e/test_quality_report.py": 30,
}


class LongestFirst(OrderedDict):
    """A work queue whose next unit (xdist takes it with popitem(last=False)) is the longest
    left (SECONDS_PER_UNIT); among equals, the first: the session's random order stays."""

    def popitem(self, last: bool = True):
        if last:
            return super().popitem(last=True)
        unit = max(self, key=lambda scope: SECONDS_PER_UNIT.get(scope, 0))
        return unit, self.pop(unit)


def longest_first_loadfile(config, log):
    """pytest-xdist's `loadfile` scheduler, but each test of SPREAD_OVER_WORKERS a unit of its
    own, and the units handed out longest first."""
    from xdist.scheduler import LoadFileScheduling

    class LoadFileSpreading(LoadFileScheduling):
        def __init__(self, config, log=None):
            super().__init__(config, log)
            self.workqueue = LongestFirst()

        def _split_scope(self, nodeid: str) -> str:
            file = super()._split_scope(nodeid)
            return nodeid if file in SPREAD_OVER_WORKERS else file

    return LoadFileSpreading(config, log)
