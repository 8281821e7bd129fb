"""The quality gate's cost: both checkpoints plus publish, against the `dbt build` they gate.

    python benchmarks/gate.py                  # the demo data (`make run`'s), times 1
    python benchmarks/gate.py --scale 0.2      # what the tests run

On a throwaway PostgreSQL, every demo source lands (files, the research database, the demo FHIR
server); then, as the warehouse build does it:
  1. the landed checkpoint (every raw batch; staging reads only validated files);
  2. `dbt build` of everything into build_blue: the baseline, its wall time (dbt's start-up in);
  3. the publish gate on build_blue, publish.
Steps 1 and 3 each run in a fresh Python process, as their Airflow tasks do; the goal is for their
work with Great Expectations already imported, and the processes' wall time, GX's imports in it,
is printed beside. It is the first validation of a new GX project (its assets are written to the
project as it goes), as in a first `make run`. Progress goes to stderr; the last line of stdout
is one JSON object with the figures and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import settings
from demo.claims_files import write_claims
from demo.ehr_extracts import write_extracts, write_patient_extract
from demo.fhir_resources import demo_resources
from demo.fhir_server import DemoFhirServer, FhirStore
from demo.research_db import ensure_database, fill
from demo.vitals_files import write_vitals
from ingestion.sources import FILE_SOURCE_NAMES
from orchestration import pipeline
from warehouse.connection import dbt_environment, from_environment
from warehouse.dbt_runner import run_dbt
from warehouse.throwaway import throwaway_warehouse

# The goal is for the gate's work: its checkpoints and publish, Great Expectations imported. A
# fresh process adds GX's import (4-5 s here, more than both checkpoints), printed beside.
GOALS = {"gate_and_publish_gx_imported_vs_dbt_build": 0.25}
RUN_ID = "bench_gate"

# Run in a fresh process, as an Airflow task runs them: the steps named in argv[3], timed.
GATE_STEPS = """
import json, sys, time
started = time.perf_counter()
import great_expectations
imported = time.perf_counter()
from orchestration import pipeline
timings = {"gx_import": imported - started}
steps = {
    "landed_checkpoint": lambda: pipeline.validate_landed_batches(sys.argv[1]),
    "publish_gate": lambda: pipeline.quality_gate(sys.argv[2], sys.argv[1]),
    "publish": lambda: pipeline.publish(sys.argv[2], sys.argv[1]),
}
for step in sys.argv[3].split(","):
    began = time.perf_counter()
    steps[step]()
    timings[step] = time.perf_counter() - began
print(json.dumps(timings))
"""


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_steps(steps: str) -> tuple[float, dict[str, float]]:
    """Run the comma-separated gate steps in a fresh process; its wall time and step timings."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", GATE_STEPS, RUN_ID, "build_blue", steps],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the gate steps {steps} failed:\n{done.stderr[-3000:]}")
    timings = json.loads(done.stdout.strip().splitlines()[-1])
    progress(f"  {wall:.1f} s ({timings})")
    return wall, timings


def land_demo(scale: float, run_id: str = RUN_ID) -> dict[str, int]:
    """Write and land every source's demo data, `scale` times `make run`'s; rows per source."""
    landing = settings.LANDING_DIR

    def scaled(n: int) -> int:
        return max(1, round(n * scale))

    write_patient_extract(landing / "ehr_patients")
    write_extracts(landing / "ehr", files=3, rows=scaled(200))
    write_claims(landing / "claims", files=2, claims=scaled(100))
    write_vitals(landing / "vitals", files=5, readings=scaled(200))
    warehouse = from_environment()
    ensure_database(warehouse)
    fill(warehouse, trials=scaled(100))
    server = DemoFhirServer(
        FhirStore(demo_resources(patients=scaled(50))),
        "healthcare-warehouse",
        os.environ["FHIR_CLIENT_SECRET"],
    )
    os.environ["FHIR_BASE_URL"] = server.start()
    rows = {}
    try:
        for source in FILE_SOURCE_NAMES:
            rows[source] = pipeline.land_files(source, run_id, settle_seconds=0)["received"]
        rows["fhir"] = pipeline.land_fhir_api(run_id)["received"]
        rows["research"] = pipeline.land_research_db(run_id)["received"]
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="of make run's demo data")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder, throwaway_warehouse(Path(folder)) as warehouse:
        progress("landing the demo data")
        rows = land_demo(args.scale)
        progress(f"  received: {rows}")
        env = {
            **os.environ,
            **dbt_environment(warehouse),
            "DBT_BUILD_SCHEMA": "build_blue",
            "PIPELINE_RUN_ID": RUN_ID,
            "DBT_TARGET_PATH": str(Path(folder) / "dbt_target"),
        }
        # the landed checkpoint runs before dbt (staging reads validated files only), the gate
        # and publish after it: two tasks, two processes
        progress("landed checkpoint, in a fresh process")
        gate_wall, timings = run_steps("landed_checkpoint")
        progress("dbt build of everything (the baseline)")
        started = time.perf_counter()
        run_dbt(["build"], env)
        dbt_seconds = time.perf_counter() - started
        progress(f"  {dbt_seconds:.1f} s")
        progress("publish gate and publish, in a fresh process")
        wall, more = run_steps("publish_gate,publish")
        gate_wall += wall
        timings = {**more, **timings, "gx_import": timings["gx_import"] + more["gx_import"]}

    without_import = gate_wall - timings["gx_import"]
    report = {
        "benchmark": "gate",
        "demo_rows_received": rows,
        "demo_rows_total": sum(rows.values()),
        "dbt_build_seconds": round(dbt_seconds, 2),
        "gate_and_publish_seconds": round(gate_wall, 2),
        "gate_and_publish_seconds_gx_imported": round(without_import, 2),
        "steps_seconds": {k: round(v, 3) for k, v in timings.items()},
        "ratios": {
            "gate_and_publish_vs_dbt_build": round(gate_wall / dbt_seconds, 3),
            "gate_and_publish_gx_imported_vs_dbt_build": round(without_import / dbt_seconds, 3),
        },
        "goals": GOALS,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
