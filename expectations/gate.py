"""The gate before publishing: validate a build schema's marts and decide whether it may publish.

    hcw gate build_green

Each mart of `quality.yml`'s `published` section is validated by its own checkpoint (its checks,
plus a hand-written suite from `suites/<name>.json` where one is named). Marts hold no PHI, so a
failing row is named by its surrogate key. The build passes only when no blocking expectation
failed, here or in this run's landed checkpoint (expectations/landed.py), and every relation named
like a published one is on the build's allow-list (warehouse/publish.py), and the PHI scan finds
no raw identifier in what analysts would select of the relations the run rebuilt; warnings are recorded
and published with it. The verdict goes to `audit.gate_results`, the scores to
`audit.quality_scores`; `warehouse/publish.py` refuses a build without a passing one.
"""

from __future__ import annotations

import json
import logging
from datetime import date

import psycopg

from expectations import checks
from expectations import context as gx_context
from expectations.results import Failure, Verdict, failure_from_dict, failures_of, record, scores_of
from warehouse import phi_scan
from warehouse.connection import Warehouse
from warehouse.publish import unlisted_relations

log = logging.getLogger(__name__)

CHECKPOINT = "publish_gate"
KEYS_NAMED = 20


def _hand_written(name: str) -> list:
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    spec = json.loads((checks.HERE / "suites" / f"{name}.json").read_text())
    return [
        ExpectationConfiguration(
            type=item["type"], kwargs=item["kwargs"], meta=item.get("meta")
        ).to_domain_obj()
        for item in spec["expectations"]
    ]


def _suite(table: checks.PublishedTable, quality: checks.QualityConfig, today: date):
    import great_expectations as gx

    expectations = [checks.expectation(c, quality.thresholds, today) for c in table.checks]
    if table.suite_file:
        expectations += _hand_written(table.suite_file)
    return gx.ExpectationSuite(name=f"{CHECKPOINT}.{table.table}", expectations=expectations)


def _landed_failures(conn: psycopg.Connection, run_id: str) -> list[Failure]:
    """Blocking failures of this run's landed checkpoint: they hold its publication too."""
    rows = conn.execute(
        "select details from audit.gate_results where run_id = %s and checkpoint = 'landed'",
        (run_id,),
    ).fetchall()
    found = [failure_from_dict(item) for (details,) in rows for item in details]
    return [f for f in found if f.blocking]


def _unlisted_failures(conn: psycopg.Connection, build_schema: str) -> list[Failure]:
    """A relation named like a published one but not on the build's allow-list (a model without
    `meta: {published: true}`, or a table no model makes) blocks: analysts would not get it, and
    nobody declared what it holds."""
    return [
        Failure(
            CHECKPOINT,
            f"{build_schema}.{relation}",
            "relation_is_on_the_allow_list",
            [],
            "published_allow_list",
            "blocking",
            "validity",
            None,
            None,
            observed=0.0,
        )
        for relation in unlisted_relations(conn, build_schema)
    ]


def _rebuilt_and_published(
    conn: psycopg.Connection, build_schema: str, run_id: str
) -> dict[str, list[str]]:
    """The published relations this run's dbt build wrote from the sources (not from code sets
    alone), with their published columns."""
    rows = conn.execute(
        """
        select published.relation, published.columns from audit.published_columns as published
        where published.build_schema = %s and published.reads_sources
            and exists (
                select 1 from audit.dbt_node_results as results
                where results.run_id = %s and results.build_schema = published.build_schema
                    and results.unique_id = published.unique_id
                    and results.status = 'success'
            )
        """,
        (build_schema, run_id),
    ).fetchall()
    return dict(rows)


def _raw_identifier_failures(
    warehouse: Warehouse, build_schema: str, relations: dict[str, list[str]]
) -> list[Failure]:
    """The PHI scan (warehouse/phi_scan.py) of what analysts would select of the relations
    rebuilt: a raw identifier value in a published column, or a filled date column in a relation
    tied to patients, blocks. Read as `transformer`, which reads the raw schemas (not
    quarantine, whose records no build reads). A finding names the column and the identifier's
    class, never the value."""
    index = phi_scan.IdentifierIndex(
        phi_scan.raw_identifiers(warehouse, "transformer", quarantined=False)
    )
    findings = phi_scan.scan_relations(
        warehouse, "transformer", build_schema, index, only=relations
    )
    return [
        Failure(
            CHECKPOINT,
            finding.relation,
            "holds_no_raw_identifier",
            [finding.column],
            f"phi_scan: {finding.identifier_class}",
            "blocking",
            "validity",
            None,
            None,
            observed=float(finding.values),
        )
        for finding in findings
    ]


def run_gate(
    warehouse: Warehouse, build_schema: str, run_id: str, today: date | None = None
) -> Verdict:
    try:
        return _run_gate(warehouse, build_schema, run_id, today)
    finally:
        gx_context.forget_datasource_urls()


def _run_gate(warehouse: Warehouse, build_schema: str, run_id: str, today: date | None) -> Verdict:
    today = today or date.today()
    quality = checks.load()
    context = gx_context.open_context(warehouse)
    failures: list[Failure] = []
    scores: list[dict] = []
    evaluated = 0
    for table in quality.published:
        batch = gx_context.batch_definition(
            context, f"published_{build_schema}", table.table, table_name=table.table
        )
        result = gx_context.run_checkpoint(
            context,
            f"{CHECKPOINT}.{table.table}",
            _suite(table, quality, today),
            batch,
            {
                "result_format": "SUMMARY",
                "partial_unexpected_count": KEYS_NAMED,
                "unexpected_index_column_names": [table.key],
            },
            run_id,
        )
        evaluated += len(result.results)
        scores += scores_of(result, CHECKPOINT, None, table.table, quality.thresholds)
        failures += failures_of(result, f"{build_schema}.{table.table}")
    with psycopg.connect(**warehouse.connect_kwargs("publisher")) as conn:
        failures += _landed_failures(conn, run_id)
        failures += _unlisted_failures(conn, build_schema)
        rebuilt = _rebuilt_and_published(conn, build_schema, run_id)
    if rebuilt:
        failures += _raw_identifier_failures(warehouse, build_schema, rebuilt)
    with psycopg.connect(**warehouse.connect_kwargs("publisher")) as conn:
        verdict = Verdict(CHECKPOINT, build_schema, evaluated, failures)
        record(conn, verdict, scores, run_id)
    return verdict
