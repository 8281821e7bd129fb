"""The warehouse build's steps in order, without Airflow, for tests that need a published build
(tests/dags runs the same steps through Airflow: `airflow dags test warehouse_build`)."""

from __future__ import annotations

from orchestration import pipeline


def build_and_publish(tw, run_id: str) -> str:
    """Validate what landed, build with dbt, gate and publish; return the published schema."""
    pipeline.validate_landed_batches(run_id)
    build_schema = pipeline.choose_build_schema()
    result = tw.dbt("build", build_schema=build_schema, run_id=run_id)
    assert result.returncode == 0, result.stdout[-3000:]
    pipeline.quality_gate(build_schema, run_id)
    pipeline.publish(build_schema, run_id)
    return build_schema
