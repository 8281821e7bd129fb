"""The maintenance DAG's steps: what is kept only for a while is deleted, the warehouse is backed up
(settings: airflow/orchestration.yml's `maintenance`)."""

from __future__ import annotations


def apply_retention(retention_days: dict[str, float]) -> dict[str, int]:
    """What is past its retention is deleted; what stays under var/ is made owner-only again (a
    tool that copies a file keeps its mode)."""
    from common.private_files import make_var_private
    from common.retention import apply_retention

    deleted = apply_retention(retention_days)
    make_var_private()
    return deleted


def back_up_warehouse(keep: int) -> str:
    """A base backup, checked as it is taken; then every kept backup checked to be as it was
    written (without the key, which no task holds: warehouse/backup.py)."""
    from orchestration.task_warehouse import task_warehouse
    from warehouse.backup import back_up, backups, check_stored

    taken = back_up(task_warehouse(), keep)
    for kept in backups():
        check_stored(kept)
    return str(taken)
