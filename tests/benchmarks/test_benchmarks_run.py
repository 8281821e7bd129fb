"""Every benchmark runs at a small size, so none rots: it exits cleanly and its last line is one
JSON object with its figures. Speed goals are checked by `make bench`, never here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from common import settings
from tests.warehouse.test_build_plan import AS_OF_MODELS
from warehouse.throwaway import THROWAWAY_TEMPLATE_VARIABLE

# every benchmark, small: minutes together
pytestmark = pytest.mark.slow

BENCHMARKS = settings.PROJECT_ROOT / "benchmarks"
SMALL = {
    "landing.py": ["--rows", "20000", "--memory-rows", "20000", "40000"],
    "fhir_pull.py": ["--patients", "10", "--page-size", "20"],
    "incremental.py": ["--readings", "5000"],
    "gate.py": ["--scale", "0.2"],
    "dag_run.py": ["--scale", "0.2"],
    "dag_parse.py": ["--repeat", "1"],
    "monitoring.py": [
        "--beds",
        "20",
        "--seconds-per-file",
        "5",
        "--files",
        "3",
        "--feed-files",
        "4",
        "--analyst-load",
    ],
}


def test_every_benchmark_has_a_small_size():
    assert {path.name for path in BENCHMARKS.glob("*.py")} == set(SMALL)


# each on whichever of pytest-xdist's workers is free (tests/conftest.py: SPREAD_OVER_WORKERS)
@pytest.mark.parametrize("name", sorted(SMALL))
def test_benchmark_runs_small_and_reports_json(name, warehouse_template):
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *SMALL[name]],
        # their throwaway warehouses are copies of the session's template
        env={**os.environ, THROWAWAY_TEMPLATE_VARIABLE: str(warehouse_template)},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["benchmark"] == name.removesuffix(".py")
    if name == "landing.py":
        assert set(report["rows_per_second"]) == {"loader", "copy", "to_sql"}
        assert report["loader_rows_loaded"] + report["loader_rows_quarantined"] == 20000
        assert set(report["loader_peak_rss_mb_by_rows"]) == {"20000", "40000"}
    if name == "fhir_pull.py":
        for run in ("without_faults", "with_429_every_5th"):
            assert report[run]["resources_landed"] == report["resources"]
        assert report["with_429_every_5th"]["answered"]["429"] > 0
    if name == "gate.py":
        assert report["demo_rows_total"] > 0
        assert set(report["steps_seconds"]) >= {"landed_checkpoint", "publish_gate", "publish"}
    if name == "monitoring.py":
        crowded = report["latency_under_analyst_load"]
        # the analysts past their connection limit (role_limits.yml) are refused
        assert crowded["analyst_connections"] == {"held": 20, "refused": 180}
        assert crowded["analyst_long_queries_running_to_the_end"] == 10
        assert crowded["micro_batches"] == 4
    if name == "dag_run.py":
        # the DAG built every node and its tests, then skipped them all with nothing new
        assert report["selection"] == "fqn:*"
        assert report["dag"]["succeeded"] == report["dag"]["dbt_tasks"] > 50
        # all but the two gates after the producer (Cosmos' and build_ended)
        assert report["nothing_new_dag"]["skipped"] == report["dag"]["dbt_tasks"] - 2
        # against dbt build before and after the DAG's run, the same selection twice
        before, after = report["dbt_build_seconds_before_after"]
        assert report["dbt_build_seconds"] == pytest.approx((before + after) / 2, abs=0.01)
        assert report["ratio"] > 0
    if name == "dag_parse.py":
        assert report["tasks"] > 50  # both modes rendered the same graph of every dbt node
        assert set(report["parse_seconds"]) == {"manifest", "dbt_ls"}
    if name == "incremental.py":
        assert report["readings_added"] == 50
        for run in ("full_refresh", "incremental_1_percent", "nothing_new"):
            assert report[run]["publish_seconds"] > 0

        # the plan builds the vitals models for new readings, and nothing when nothing is new
        # (and, when midnight passed since the schema's last build, the models reckoning ages on
        # the build's day)
        def turned(run: str) -> int:
            return len(AS_OF_MODELS) if report[run]["new_day"] else 0

        assert report["incremental_1_percent"]["models"] == 6 + turned("incremental_1_percent")
        assert report["full_refresh"]["models"] > 6
        assert report["nothing_new"]["models"] == turned("nothing_new")
