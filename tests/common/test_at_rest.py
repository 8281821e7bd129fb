"""PHI at rest: the modes under var/ and the retention of what is kept there (the whole of it
after a real `make run`: tests/warehouse/test_migrations.py)."""

from __future__ import annotations

import os
import time

import pytest

from common import private_files, retention, settings


def _mode(path) -> str:
    return oct(path.stat().st_mode & 0o777)


def test_var_becomes_owner_only_but_the_embedded_servers_folder(tmp_path):
    var = tmp_path / "var"
    (var / "archive" / "ehr").mkdir(parents=True)
    landed = var / "archive" / "ehr" / "ehr_2024-03-15_001.csv"
    landed.write_text("patient_id\n")
    pgdata = var / settings.EMBEDDED_PGDATA.name
    pgdata.mkdir()
    (pgdata / "postgresql.conf").write_text("")
    for path in (var, var / "archive", var / "archive" / "ehr"):
        path.chmod(0o755)
    for path in (landed, pgdata / "postgresql.conf"):
        path.chmod(0o644)
    pgdata.chmod(0o750)

    assert private_files.make_var_private(var) == 4
    assert _mode(var) == "0o711"
    assert _mode(var / "archive") == _mode(var / "archive" / "ehr") == "0o700"
    assert _mode(landed) == "0o600"
    assert (_mode(pgdata), _mode(pgdata / "postgresql.conf")) == ("0o750", "0o644")
    assert private_files.make_var_private(var) == 0  # nothing left to change


def test_a_process_that_restricts_new_files_creates_them_owner_only(tmp_path):
    before = os.umask(0o022)
    try:
        private_files.restrict_new_files()
        (tmp_path / "folder").mkdir()
        (tmp_path / "file").write_text("x")
    finally:
        os.umask(before)
    assert (_mode(tmp_path / "folder"), _mode(tmp_path / "file")) == ("0o700", "0o600")


def test_retention_deletes_each_kind_past_its_own_days_and_needs_one_for_every_kind(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(settings, "VAR_DIR", tmp_path)
    monkeypatch.setattr(settings, "ARCHIVE_DIR", tmp_path / "archive")
    monkeypatch.setattr(settings, "QUARANTINE_DIR", tmp_path / "quarantine")
    monkeypatch.setattr(settings, "DLT_DATA_DIR", tmp_path / "dlt")
    monkeypatch.setattr(settings, "AIRFLOW_HOME", tmp_path / "airflow")
    monkeypatch.setattr(settings, "EMBEDDED_PGDATA", tmp_path / "pgdata")
    server_log = tmp_path / "pgdata" / settings.SERVER_LOG_FOLDER
    now = time.time()
    days = {"archive": 30, "quarantine": 90, "dlt_packages": 7, "logs": 30}

    def kept_for(path, age_days):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        os.utime(path, (now - age_days * 86400, now - age_days * 86400))
        return path

    package = tmp_path / "dlt" / "pipelines" / "ehr_files" / "load" / "loaded" / "17.1"
    pending = tmp_path / "dlt" / "pipelines" / "ehr_files" / "load" / "normalized" / "18.1"
    old = [
        kept_for(tmp_path / "archive" / "ehr" / "a.csv", 31),
        kept_for(tmp_path / "quarantine" / "ehr" / "q.csv", 91),
        kept_for(package / "completed_jobs" / "e.parquet", 8),
        kept_for(tmp_path / "airflow" / "logs" / "t.log", 31),
        kept_for(server_log / "postgresql-2020-12-01.json", 2191),
    ]
    young = [
        kept_for(tmp_path / "archive" / "ehr" / "b.csv", 29),
        kept_for(tmp_path / "quarantine" / "ehr" / "r.csv", 89),  # older than the archive's 30
        kept_for(tmp_path / "logs" / "p.log", 1),
        kept_for(server_log / "postgresql-2021-01-01.json", 2189),  # older than the logs' 30
        # a pending package, however old, is dlt's to abort (its state moved the cursors)
        kept_for(pending / "new_jobs" / "e.parquet", 30),
        kept_for(tmp_path / "dlt" / "pipelines" / "ehr_files" / "state.json", 30),
    ]
    with pytest.raises(
        ValueError, match="no retention configured for: access_log, validation_results"
    ):
        retention.apply_retention(days, now)
    assert all(path.exists() for path in old)  # refused before deleting anything

    deleted = retention.apply_retention({**days, "validation_results": 30, "access_log": 2190}, now)
    assert deleted == {
        "archive": 1,
        "quarantine": 1,
        "dlt_packages": 1,
        "logs": 1,
        "validation_results": 0,
        "access_log": 1,
    }
    assert not [path for path in old if path.exists()] and not package.exists()
    assert all(path.exists() for path in young)
