"""The gate before publishing: validate a build schema's marts and decide whether it may publish.

    hcw gate build_green

Each mart of `quality.yml`'s `published` section is validated by its own checkpoint (its checks,
plus a hand-written suite from `suites/<name>.json` where one is named). Marts hold no PHI, so a
failing row is named by its surrogate key. The build passes only when no blocking expectation
failed, here or in this run's landed checkpoint (expectations/landed.py); warnings are recorded
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
from warehouse.connection import Warehouse

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


def run_gate(
    warehouse: Warehouse, build_schema: str, run_id: str, today: date | None = None
) -> Verdict:
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
    with psycopg.connect(**warehouse.connect_kwargs("transformer")) as conn:
        failures += _landed_failures(conn, run_id)
        verdict = Verdict(CHECKPOINT, build_schema, evaluated, failures)
        record(conn, verdict, scores, run_id)
    return verdict
