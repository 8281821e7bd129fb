"""Airflow commands one after the other in one process: `airflow db migrate`, then `airflow dags
test DAG` for each DAG, each through Airflow's own command line, without paying Airflow's start-up
(its imports, its DAG folder's first parse, its in-process API server) for every one.

    python -m orchestration.dag_runner ehr_batch claims_batch warehouse_build

`make run` runs its DAGs this way, in Airflow's environment (orchestration.airflow_env). Each
command's output starts with a line `== <command>`; the first DAG run that fails ends the process
with exit code 1 (`DagRun failed`), as `airflow dags test` would.
"""

from __future__ import annotations

import sys

from common.process_exit import exit_without_collecting

MARKER = "== "


def run(dag_ids: list[str]) -> None:
    from airflow.cli import cli_parser

    parser = cli_parser.get_parser()
    for command in (["db", "migrate"], *(["dags", "test", dag_id] for dag_id in dag_ids)):
        print(MARKER + " ".join(command), flush=True)
        # as the command line's own process has it (dag_settings reads it: no deadline in a test)
        sys.argv = ["airflow", *command]
        args = parser.parse_args(command)
        args.func(args)
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    try:
        run(sys.argv[1:])
    finally:
        exit_without_collecting()
