"""The Great Expectations project the gate runs in: a file context under `var/gx/`.

Suites, validation definitions and checkpoints are written there from `quality.yml` and
`suites/` on every run; validation results accumulate there, run after run, and Data Docs are
built from them. Datasources name their connection string as `${GX_..._URL}`, filled from the
environment at run time, so no password is ever written to the project.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from common import settings
from warehouse.connection import Warehouse

log = logging.getLogger(__name__)


def datasources() -> dict[str, tuple[str, str | None]]:
    """Each datasource's role and schema: loader reads raw tables and the ledger, transformer a
    build schema (on its search path). Not the publisher, which records the verdict and
    publishes: it never runs what the builder made (a function in a view runs as its reader)."""
    from warehouse.publish import BUILD_SCHEMAS

    return {
        "landed": ("loader", None),
        **{f"published_{schema}": ("transformer", schema) for schema in BUILD_SCHEMAS},
    }


def gx_dir():
    return settings.VAR_DIR / "gx"


def _quiet() -> None:
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


def forget_datasource_urls() -> None:
    """Take the datasources' URLs (a role's password in each) out of this process's environment
    once their validation is done: a process that runs every task (`make run`) would hand them to
    a later task's child processes (dbt, pg_dump)."""
    for variable in [
        name for name in os.environ if name.startswith("GX_") and name.endswith("_URL")
    ]:
        del os.environ[variable]


def open_context(warehouse: Warehouse | None = None):
    """The gate's file context; with `warehouse`, its datasources point at it (env placeholders)."""
    _quiet()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    settings.load_env()
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(settings.VAR_DIR))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # no bars in task logs
    # GX re-reads this file at every configuration lookup (hundreds a checkpoint); it holds no
    # variable here (connection strings come from the environment), so it is not kept.
    (gx_dir() / "uncommitted" / "config_variables.yml").unlink(missing_ok=True)
    if warehouse is not None:
        for name, (role, schema) in datasources().items():
            variable = f"GX_{name.upper()}_URL"
            url = warehouse.url(role, driver="postgresql+psycopg2")
            os.environ[variable] = url + (f"?options=-csearch_path%3D{schema}" if schema else "")
            if name not in {source.name for source in context.data_sources.all().values()}:
                context.data_sources.add_postgres(name=name, connection_string=f"${{{variable}}}")
    return context


def batch_definition(context, datasource: str, asset_name: str, **asset: Any):
    """The whole-table batch of a query asset (`query=`) or table asset (`table_name=`), added to
    the project once; replaced only when its query or table changes (each change rewrites the
    project's configuration)."""
    source = context.data_sources.get(datasource)
    if asset_name in {a.name for a in source.assets}:
        existing = source.get_asset(asset_name)
        unchanged = all(getattr(existing, name, None) == value for name, value in asset.items())
        if unchanged and existing.batch_definitions:
            return existing.get_batch_definition("whole")
        source.delete_asset(asset_name)
    if "query" in asset:
        made = source.add_query_asset(name=asset_name, query=asset["query"])
    else:
        made = source.add_table_asset(name=asset_name, **asset)
    return made.add_batch_definition_whole_table("whole")


def run_checkpoint(context, name: str, suite, batch, result_format: dict, run_id: str):
    """Validate `batch` against `suite` through checkpoint `name`; its results are stored under
    the pipeline's `run_id` (the run name in Data Docs)."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    suite = context.suites.add_or_update(suite)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            result_format=result_format,
        )
    )
    result = checkpoint.run(run_id=RunIdentifier(run_name=run_id))
    return next(iter(result.run_results.values()))
