"""The steps of the main pipeline, each a function an Airflow task calls with the run's id.

land (each file source) -> choose build schema -> dbt (Cosmos task group) -> quality gate -> publish
"""

from __future__ import annotations

import logging

import psycopg

from expectations.gate import run_gate
from ingestion.file_source import FileSource, land
from ingestion.sources.claims_files import CLAIMS_FILES
from ingestion.sources.ehr_files import EHR_FILES
from ingestion.sources.vitals_files import VITALS_FILES
from ingestion.warehouse import publish as publishing
from ingestion.warehouse.connection import from_environment

log = logging.getLogger(__name__)

FILE_SOURCES: dict[str, FileSource] = {
    source.name: source for source in (EHR_FILES, CLAIMS_FILES, VITALS_FILES)
}


class GateFailed(Exception):
    """The build did not pass the quality gate; it is not published."""


def land_files(source_name: str, run_id: str) -> dict[str, int]:
    """Land the new files of one file source; return what was received, loaded, quarantined."""
    warehouse = from_environment()
    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:
        conn.execute(
            "insert into audit.pipeline_runs (run_id) values (%s) on conflict do nothing", (run_id,)
        )
    outcomes = land(FILE_SOURCES[source_name], warehouse, run_id)
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


def land_ehr_files(run_id: str) -> dict[str, int]:
    return land_files("ehr", run_id)


def choose_build_schema() -> str:
    build_schema = publishing.next_build_schema(from_environment())
    log.info("this run builds into %s", build_schema)
    return build_schema


def quality_gate(build_schema: str, run_id: str) -> None:
    verdict = run_gate(from_environment(), build_schema, run_id)
    if not verdict.passed:
        raise GateFailed(
            f"{build_schema}: {verdict.failed} of {verdict.evaluated} expectations failed; "
            "analysts keep the previously published build"
        )


def publish(build_schema: str, run_id: str) -> list[str]:
    return publishing.publish(from_environment(), build_schema, run_id)
