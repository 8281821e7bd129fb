"""Parsing the warehouse DAG: Cosmos reading the dbt manifest against Cosmos running `dbt ls`.

    python benchmarks/dag_parse.py              # 3 parses of each, the median compared
    python benchmarks/dag_parse.py --repeat 1   # what the tests run

airflow/dags/warehouse_build.py renders its Cosmos tasks from the parsed manifest (LoadMode.
DBT_MANIFEST). The baseline is the same file with LoadMode.DBT_LS and Cosmos' dbt ls cache off:
what parsing costs when Cosmos asks dbt for the graph every time. Each parse runs in a fresh
process that has already imported Airflow, Cosmos and Airflow's DagBag, as the dag-processor has
(that import's time printed beside, not in the parse time). No warehouse is needed: neither mode connects to one.
Progress goes to stderr; the last line of stdout is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import settings
from orchestration import dbt_manifest

GOALS = {"manifest_parse_seconds_under": 1.0, "dbt_ls_vs_manifest_at_least": 10.0}
DAG_FILE = settings.DAGS_DIR / "warehouse_build.py"

PARSE = """
import json, sys, time
started = time.perf_counter()
import airflow, cosmos
from airflow.dag_processing.dagbag import DagBag  # the dag-processor's own parser
imported = time.perf_counter()
bag = DagBag(sys.argv[1])
parsed = time.perf_counter()
assert not bag.import_errors, bag.import_errors
[dag] = bag.dags.values()
print(json.dumps({"import": imported - started, "parse": parsed - imported, "tasks": len(dag.tasks)}))
"""


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_environment(home: Path) -> dict[str, str]:
    """Enough for Airflow and Cosmos to parse the file: no warehouse, no metadata database."""
    connection = json.dumps(
        {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "schema": "warehouse",
         "login": "transformer", "password": "parse-only"}
    )  # fmt: skip
    return {
        **os.environ,
        **settings.NO_TELEMETRY,
        "PATH": f"{settings.VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(settings.PROJECT_ROOT),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_CACHE": "False",
        "AIRFLOW__COSMOS__ENABLE_CACHE_DBT_LS": "False",
        "AIRFLOW_CONN_WAREHOUSE_TRANSFORMER": connection,
    }


def parse(dag_file: Path, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [str(settings.VENV_BIN / "python"), "-c", PARSE, str(dag_file)],
        env=env, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"parsing {dag_file.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    dbt_manifest.ensure_manifest()
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        env = parse_environment(home / "airflow")
        # the same DAG file, asking dbt ls for the graph
        dbt_ls_file = home / "dags" / "warehouse_build.py"
        dbt_ls_file.parent.mkdir()
        source = DAG_FILE.read_text()
        assert "LoadMode.DBT_MANIFEST" in source
        dbt_ls_file.write_text(source.replace("LoadMode.DBT_MANIFEST", "LoadMode.DBT_LS"))

        runs: dict[str, list[dict[str, float]]] = {"manifest": [], "dbt_ls": []}
        for attempt in range(1, args.repeat + 1):
            for mode, dag_file in (("manifest", DAG_FILE), ("dbt_ls", dbt_ls_file)):
                result = parse(dag_file, env)
                runs[mode].append(result)
                progress(f"  {mode:<9} parse {attempt}: {result['parse']:.2f} s "
                         f"({result['tasks']} tasks; Airflow + Cosmos import {result['import']:.2f} s)")  # fmt: skip

    median = {
        mode: statistics.median(r["parse"] for r in results) for mode, results in runs.items()
    }
    tasks = {mode: results[0]["tasks"] for mode, results in runs.items()}
    if tasks["manifest"] != tasks["dbt_ls"]:
        sys.exit(f"the two modes rendered different graphs: {tasks}")
    report = {
        "benchmark": "dag_parse",
        "tasks": tasks["manifest"],
        "repeat": args.repeat,
        "airflow_cosmos_import_seconds": round(
            statistics.median(r["import"] for results in runs.values() for r in results), 2
        ),
        "parse_seconds": {mode: round(seconds, 3) for mode, seconds in median.items()},
        "parse_seconds_each": {
            mode: [round(r["parse"], 3) for r in rs] for mode, rs in runs.items()
        },
        "ratios": {"dbt_ls_vs_manifest": round(median["dbt_ls"] / median["manifest"], 1)},
        "goals": GOALS,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
