"""The suite's work queue: longest units first, the random order among the rest."""

from __future__ import annotations

import re

from common import settings
from tests.benchmarks.test_benchmarks_run import SMALL
from tests.scheduling import BENCHMARK, SECONDS_PER_UNIT, LongestFirst


def test_the_longest_unit_goes_first_and_equals_keep_their_order():
    queue = LongestFirst()
    for unit in ("tests/a.py", "tests/warehouse/test_build_plan.py", "tests/b.py"):
        queue[unit] = {}
    queue["tests/dags/test_dag_runs.py"] = {}
    taken = [queue.popitem(last=False)[0] for _ in range(len(queue))]
    assert taken == [
        "tests/dags/test_dag_runs.py",
        "tests/warehouse/test_build_plan.py",
        "tests/a.py",
        "tests/b.py",
    ]


def test_every_weighed_unit_exists():
    """A renamed file or benchmark would lose its place at the front of the queue unnoticed."""
    for unit in SECONDS_PER_UNIT:
        file, _, test = unit.partition("::")
        assert (settings.PROJECT_ROOT / file).is_file(), unit
        if test:
            assert unit.startswith(BENCHMARK), unit
            assert re.fullmatch(r".*\[(.+)\]", test).group(1) in SMALL, unit
