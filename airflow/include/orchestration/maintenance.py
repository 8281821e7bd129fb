"""The maintenance DAG's steps: what is kept only for a while is deleted, the warehouse is backed up
(settings: airflow/orchestration.yml's `maintenance`)."""

from __future__ import annotations


def apply_archive_retention(retention_days: float) -> dict[str, int]:
    from ingestion.archive_retention import apply_retention

    return apply_retention(retention_days)


def back_up_warehouse(keep: int) -> str:
    from warehouse.backup import back_up
    from warehouse.connection import from_environment

    return str(back_up(from_environment(), keep))
