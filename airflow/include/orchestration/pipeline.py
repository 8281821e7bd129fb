"""The steps of the pipeline, each a function an Airflow task calls with its pipeline run's id.

Each source's DAG lands it; the warehouse build then validates what landed (quarantining the rows
that break a check) -> plans the build (the schema analysts do not read, and what changed since
its last complete build; nothing when the published schema is current) -> dbt (Cosmos task group:
what the plan leaves out is skipped) -> records the build -> quality gate -> publish.

Each step imports what it works with (dlt, Great Expectations) when it runs; DAG tasks import this
module when they run, not when their file is parsed.
"""

from __future__ import annotations

import logging
import os

import psycopg

from common import settings
from common.env_file import shareable
from orchestration.task_warehouse import task_warehouse
from warehouse import build_plan
from warehouse import publish as publishing
from warehouse.connection import dbt_environment
from warehouse.runs import start_run

log = logging.getLogger(__name__)


class GateFailed(Exception):
    """The build did not pass the quality gate; it is not published."""


def land_files(
    source_name: str, run_id: str, settle_seconds: float | None = None
) -> dict[str, int]:
    """Land the new files of one file source that have settled (unchanged for `settle_seconds`,
    by default the landing watch's); return what was received, loaded, quarantined."""
    from ingestion.file_source import land
    from ingestion.settled_files import settled_paths
    from ingestion.sources.registry import FILE_SOURCES
    from orchestration.dag_settings import dag_config

    source = FILE_SOURCES[source_name]
    if settle_seconds is None:
        settle_seconds = dag_config("landing_watch")["settle_seconds"]
    paths = settled_paths(source.landing_dir, source.pattern, settle_seconds)
    warehouse = task_warehouse()
    start_run(warehouse, run_id)
    outcomes = land(source, warehouse, run_id, paths)
    duplicates = sum(o.status == "duplicate" for o in outcomes)
    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:
        conn.execute(
            "update audit.pipeline_runs set files_duplicate = files_duplicate + %s where run_id = %s",
            (duplicates, run_id),
        )
    counts = {
        "files": len(outcomes),
        "duplicates": duplicates,
        "received": sum(o.rows_received for o in outcomes),
        "loaded": sum(o.rows_loaded for o in outcomes),
        "quarantined": sum(o.rows_quarantined for o in outcomes),
    }
    log.info("%s files: %s", source_name, counts)
    return counts


NO_FHIR_SERVER = "no FHIR server configured (ingestion/fhir_servers.yml, FHIR_BASE_URL)"


def fhir_servers() -> list[str]:
    """The keys of the FHIR servers configured (ingestion/fhir_servers.yml), in its order."""
    from ingestion.fhir_servers import configured_servers

    settings.load_env()
    return [server.key for server in configured_servers()]


def land_fhir_server(run_id: str, key: str) -> dict[str, int]:
    """Pull the configured FHIR server `key` (its client secret from `.env`)."""
    from ingestion.api_landing import land_fhir
    from ingestion.fhir_servers import configured_servers

    settings.load_env()
    servers = configured_servers()
    server = next((each for each in servers if each.key == key), None)
    if server is None:
        raise ValueError(f"FHIR server {key} is not configured (ingestion/fhir_servers.yml)")
    warehouse = task_warehouse()
    start_run(warehouse, run_id)
    pulls = land_fhir(
        warehouse,
        run_id,
        server.base_url,
        server.client_id,
        server.client_secret(),
        token_url=server.token_url,
        server=server.key,
        # what was pulled before servers were keyed is the first configured server's (the file's
        # first entry: were it left out, empty, no other server would take it)
        owns_unkeyed_pulls=server.position == 1,
    )
    return {
        "received": sum(p.received for p in pulls.values()),
        "loaded": sum(len(p.landed) for p in pulls.values()),
        "quarantined": sum(len(p.quarantined) for p in pulls.values()),
    }


def land_fhir_api(run_id: str) -> dict[str, int]:
    """Pull every configured FHIR server, one after the other; what they received together."""
    keys = fhir_servers()
    if not keys:
        log.warning(NO_FHIR_SERVER)
        return {}
    counts: dict[str, int] = {}
    for key in keys:
        for name, count in land_fhir_server(run_id, key).items():
            counts[name] = counts.get(name, 0) + count
    return counts


def land_research_db(run_id: str) -> dict[str, int]:
    from ingestion.sources.research_db import land_research

    warehouse = task_warehouse()
    start_run(warehouse, run_id)
    return land_research(warehouse, run_id)


def validate_landed_batches(run_id: str) -> dict[str, int]:
    """The landed checkpoint: validate what landed since the last validation, before dbt."""
    from expectations.landed import validate_landed

    warehouse = task_warehouse()
    start_run(warehouse, run_id)
    verdict = validate_landed(warehouse, run_id)
    return {
        "expectations": verdict.evaluated,
        "blocking_failures": len(verdict.blocking),
        "warnings": len(verdict.warnings),
    }


def choose_build_schema() -> str:
    build_schema = publishing.next_build_schema(task_warehouse())
    log.info("this run builds into %s", build_schema)
    return build_schema


def _plan_environment(warehouse, build_schema: str, run_id: str) -> dict[str, str]:
    return {
        **shareable(dict(os.environ)),  # not the URLs Great Expectations' datasources read
        **dbt_environment(warehouse),
        "DBT_BUILD_SCHEMA": build_schema,
        "PIPELINE_RUN_ID": run_id,
        "DBT_TARGET_PATH": str(settings.VAR_DIR / "dbt_plan" / build_schema),
    }


def plan_build(build_schema: str, run_id: str) -> dict:
    """What this run's dbt build must build in `build_schema` (build_plan.BuildPlan, as a dict)."""
    warehouse = task_warehouse()
    env = _plan_environment(warehouse, build_schema, run_id)
    return build_plan.plan_build(warehouse, build_schema, run_id, env).as_dict()


def plan_next_build(run_id: str) -> dict:
    """This run's build: its schema and what to build in it (build_plan.plan_next_build)."""
    warehouse = task_warehouse()
    plan = build_plan.plan_next_build(
        warehouse, run_id, lambda schema: _plan_environment(warehouse, schema, run_id)
    )
    log.info("this run builds into %s", plan.build_schema)
    return plan.as_dict()


def record_build(build_schema: str, run_id: str) -> None:
    """The planned build completed: the next plan for `build_schema` compares with it."""
    build_plan.record_built(task_warehouse(), build_schema, run_id)


def quality_gate(build_schema: str, run_id: str) -> None:
    from expectations.gate import run_gate

    verdict = run_gate(task_warehouse(), build_schema, run_id)
    if not verdict.passed:
        raise GateFailed(
            f"{build_schema} is not published: {len(verdict.blocking)} blocking expectations"
            " failed; analysts keep the previously published build\n"
            + "\n".join(f"  {failure.describe()}" for failure in verdict.blocking)
        )


def publish(build_schema: str, run_id: str) -> list[str]:
    return publishing.publish(task_warehouse(), build_schema, run_id)
