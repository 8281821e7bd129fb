"""The short report `make run` prints after its pipeline runs (one per DAG: each source's, then
the warehouse build's), read back from the audit tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from warehouse.connection import Warehouse
from warehouse.runs import workflow_of


@dataclass(frozen=True)
class RunSummary:
    run_ids: list[str]
    files_new: int
    files_duplicate: int
    # source -> (received, loaded, quarantined, superseded within the pull)
    rows_by_source: dict[str, tuple[int, int, int, int]]
    models_built: int
    tests_passed: int
    tests_failed: int
    gate: str
    published_schema: str | None
    published_relations: list[str]
    published_rows: int  # of analytics.fct_encounters
    # what a pull found wrong with its source (a FHIR server that changed): "<server> <type>: ..."
    warnings: list[str] = field(default_factory=list)


def runs_since(warehouse: Warehouse, since: datetime) -> list[str]:
    """The pipeline runs started since `since`, in the order they started."""
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user)) as conn:
        rows = conn.execute(
            "select run_id from audit.pipeline_runs where started_at >= %s order by started_at",
            (since,),
        ).fetchall()
    return [run_id for (run_id,) in rows]


def summarize(warehouse: Warehouse, run_ids: list[str]) -> RunSummary:
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user)) as conn:
        by_source = conn.execute(
            """
            select source, count(*), sum(rows_received), sum(rows_loaded), sum(rows_quarantined)
            from audit.file_ledger where run_id = any(%s) group by source order by source
            """,
            (run_ids,),
        ).fetchall()
        api_pulls = conn.execute(
            """
            select source, 0, sum(rows_received), sum(rows_loaded), sum(rows_quarantined),
                   sum(rows_superseded)
            from audit.api_pulls where run_id = any(%s) group by source order by source
            """,
            (run_ids,),
        ).fetchall()
        warnings = conn.execute(
            """
            select server || ' ' || resource_type || ': ' || warning from audit.api_pulls
            where run_id = any(%s) and warning is not null order by recorded_at
            """,
            (run_ids,),
        ).fetchall()
        duplicates = conn.execute(
            "select coalesce(sum(files_duplicate), 0) from audit.pipeline_runs"
            " where run_id = any(%s)",
            (run_ids,),
        ).fetchone()[0]
        models, passed, failed = conn.execute(
            """
            select count(*) filter (where resource_type = 'model' and status = 'success'),
                   count(*) filter (where resource_type = 'test' and status = 'pass'),
                   count(*) filter (where resource_type = 'test' and status in ('fail', 'error'))
            from audit.dbt_node_results where run_id = any(%s)
            """,
            (run_ids,),
        ).fetchone()
        gate = conn.execute(
            """
            select passed, expectations_evaluated, expectations_failed, warnings
            from audit.gate_results
            where run_id = any(%s) and checkpoint = 'publish_gate'
            order by recorded_at desc limit 1
            """,
            (run_ids,),
        ).fetchone()
        publication = conn.execute(
            "select build_schema, relations from audit.publications"
            " order by published_at desc limit 1"
        ).fetchone()
        published_rows = 0
        if publication:
            published_rows = conn.execute(
                "select count(*) from analytics.fct_encounters"
            ).fetchone()[0]
    if gate is None:
        verdict = "not run"
    else:
        verdict = (
            f"{'PASS' if gate[0] else 'FAIL'} ({gate[2]} blocking failures, {gate[3]} warnings"
            f" in {gate[1]} expectations)"
        )
    return RunSummary(
        run_ids=run_ids,
        files_new=sum(row[1] for row in by_source),
        rows_by_source={
            **{row[0]: (row[2], row[3], row[4], 0) for row in by_source},
            **{row[0]: (row[2], row[3], row[4], row[5]) for row in api_pulls},
        },
        files_duplicate=duplicates,
        models_built=models,
        tests_passed=passed,
        tests_failed=failed,
        gate=verdict,
        published_schema=publication[0] if publication else None,
        published_relations=publication[1] if publication else [],
        published_rows=published_rows,
        warnings=[warning for (warning,) in warnings],
    )


def render(summary: RunSummary, warehouse: Warehouse) -> str:
    analyst_url = f"postgresql://analyst@{warehouse.host}:{warehouse.port}/{warehouse.database}"
    s = summary
    width = max([16, *(len(source) + 7 for source in s.rows_by_source)])
    lines = [
        f"Pipeline runs of {', '.join(workflow_of(run_id) for run_id in s.run_ids)}",
        f"  {'files:':<{width}}{s.files_new} new, {s.files_duplicate} already landed",
        *(
            f"  {source + ' rows:':<{width}}{received} received = {loaded} loaded"
            + f" + {quarantined} quarantined"
            + (f" + {superseded} superseded" if superseded else "")
            for source, (received, loaded, quarantined, superseded) in s.rows_by_source.items()
        ),
        *([] if s.rows_by_source else [f"  {'rows:':<{width}}none new"]),
        *(f"  {'WARNING:':<{width}}{warning}" for warning in s.warnings),
        f"  {'dbt:':<{width}}{s.models_built} models built, {s.tests_passed} tests passed,"
        + f" {s.tests_failed} failed",
        f"  {'quality gate:':<{width}}{s.gate}",
        f"  {'published:':<{width}}{len(s.published_relations)} relations in analytics"
        + f" -> {s.published_schema} (fct_encounters: {s.published_rows} rows)",
        f"  {'':<{width}}{', '.join(s.published_relations)}",
        "",
        "Gate decisions, quality scores and the quarantine, for everyone: `make report`.",
        "Query the mart as the read-only analyst (password: WAREHOUSE_ANALYST_PASSWORD in .env):",
        f'  psql "{analyst_url}" -c "select department_name, count(*)'
        + ' from analytics.fct_encounters group by 1"',
    ]
    return "\n".join(lines)
