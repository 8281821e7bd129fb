"""A test module's one Airflow process for its DAG runs: each line read from stdin names DAGs,
which run as `make run` runs its DAGs (orchestration.dag_runner: `airflow db migrate`, then
`airflow dags test` of each, the first failed run ending the request); then a line
`DONE <exit code>`. Airflow starts once per module rather than once per request (its imports,
its DAG folder's first parse, its in-process API server: about 7 s of CPU each time).

    python -m tests.dags.dag_server        # tests.dags.airflow_cli.DagRunner starts it
"""

from __future__ import annotations

import sys
import traceback

from orchestration import dag_runner

DONE = "DONE "


def serve() -> None:
    for line in sys.stdin:
        try:
            dag_runner.run(line.split())
            code = 0
        except SystemExit as stopped:  # `airflow dags test`'s failed run: "DagRun failed"
            print(stopped, flush=True)
            code = stopped.code if isinstance(stopped.code, int) else 1
        except Exception:  # noqa: BLE001 - any error ends the request, never the module's process
            traceback.print_exc(file=sys.stdout)
            code = 1
        sys.stderr.flush()
        print(f"{DONE}{code}", flush=True)


if __name__ == "__main__":
    serve()
