"""Run the publish gate on a build schema and record its verdict in audit.gate_results.

    python -m expectations.gate build_green

The checkpoint (`checkpoints/publish_gate.yml`) lists the tables to validate and the suite each
must pass (`suites/<name>.json`, in Great Expectations' own suite format). Nothing is published
unless the latest verdict for the build schema is a pass.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import yaml

from ingestion.warehouse.connection import Warehouse, from_environment

log = logging.getLogger(__name__)
logging.getLogger("great_expectations").setLevel(logging.WARNING)

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Verdict:
    build_schema: str
    passed: bool
    evaluated: int
    failed: int
    failures: list[dict]


def _suite(name: str):
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    spec = json.loads((HERE / "suites" / f"{name}.json").read_text())
    expectations = [
        ExpectationConfiguration(
            type=item["type"], kwargs=item["kwargs"], meta=item.get("meta")
        ).to_domain_obj()
        for item in spec["expectations"]
    ]
    return gx.ExpectationSuite(name=spec["name"], expectations=expectations, meta=spec.get("meta"))


def run_gate(warehouse: Warehouse, build_schema: str, run_id: str) -> Verdict:
    import great_expectations as gx

    checkpoint_spec = yaml.safe_load((HERE / "checkpoints" / "publish_gate.yml").read_text())
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # no bars in task logs
    datasource = context.data_sources.add_postgres(
        name="warehouse",
        connection_string=warehouse.url("transformer", driver="postgresql+psycopg2")
        + f"?options=-csearch_path%3D{build_schema}",
    )
    definitions = []
    for validation in checkpoint_spec["validations"]:
        asset = datasource.add_table_asset(name=validation["table"], table_name=validation["table"])
        batch = asset.add_batch_definition_whole_table(f"{validation['table']}_whole")
        suite = context.suites.add(_suite(validation["suite"]))
        definitions.append(
            context.validation_definitions.add(
                gx.ValidationDefinition(
                    name=f"{build_schema}.{validation['table']}", data=batch, suite=suite
                )
            )
        )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(name=checkpoint_spec["name"], validation_definitions=definitions)
    )
    result = checkpoint.run()

    evaluated, failures = 0, []
    for validation_result in result.run_results.values():
        for outcome in validation_result.results:
            evaluated += 1
            if not outcome.success:
                failures.append(
                    {
                        "suite": validation_result.suite_name,
                        "expectation": outcome.expectation_config.type,
                        "column": outcome.expectation_config.kwargs.get("column"),
                        "unexpected_count": outcome.result.get("unexpected_count"),
                    }
                )
    verdict = Verdict(build_schema, bool(result.success), evaluated, len(failures), failures)
    _record(warehouse, verdict, run_id)
    return verdict


def _record(warehouse: Warehouse, verdict: Verdict, run_id: str) -> None:
    with psycopg.connect(**warehouse.connect_kwargs("transformer")) as conn:
        conn.execute(
            """
            insert into audit.gate_results
                (run_id, build_schema, passed, expectations_evaluated, expectations_failed, details)
            values (%s, %s, %s, %s, %s, %s)
            """,
            (
                run_id,
                verdict.build_schema,
                verdict.passed,
                verdict.evaluated,
                verdict.failed,
                json.dumps(verdict.failures),
            ),
        )
    for failure in verdict.failures:
        log.error("gate: %s: %s failed", failure["suite"], failure["expectation"])
    log.info(
        "gate on %s: %s (%d expectations, %d failed)",
        verdict.build_schema,
        "PASS" if verdict.passed else "FAIL",
        verdict.evaluated,
        verdict.failed,
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build_schema = sys.argv[1]
    verdict = run_gate(from_environment(), build_schema, run_id="manual")
    sys.exit(0 if verdict.passed else 1)


if __name__ == "__main__":
    main()
