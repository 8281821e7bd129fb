"""A restore to a moment between two loads, by the runbook's command (docs/runbook.md, "Backups
and restore": hcw restore --to): the warehouse holds exactly the first load; the next runs land
the second load's files again and pull again what the FHIR server changed after the moment; every
count reconciles."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, date, datetime

import pytest

from common import settings
from demo.ehr_extracts import write_extracts
from demo.fhir_resources import demo_resources
from demo.fhir_server import DemoFhirServer, FhirStore
from ingestion import dlt_pipeline
from ingestion.api_landing import land_fhir
from ingestion.file_source import land
from ingestion.sources.ehr_files import EHR_FILES
from tests.ingestion.fhir_pulls import CLIENT_ID, CLIENT_SECRET, FAST, rows
from warehouse import backup

pytestmark = pytest.mark.e2e
ARCHIVE_WAL = True  # as the product's own server (tests/conftest.py)

COUNTS = {
    "ehr rows": "select count(*) from raw_ehr.encounters",
    "ledger files": "select count(*) from audit.file_ledger",
    "fhir resources": "select count(*) from raw_fhir.resources",
    "fhir inactive patients": "select count(*) from raw_fhir.resources"
    " where resource_type = 'Patient' and resource->>'active' = 'false'",
}


def _counts(test_warehouse) -> dict[str, int]:
    return {name: rows(test_warehouse, query)[0][0] for name, query in COUNTS.items()}


def _pull(test_warehouse, base_url: str, run_id: str) -> int:
    dlt_pipeline._pipelines.clear()  # a run is a process of its own: no pipeline kept warm
    pulls = land_fhir(
        test_warehouse.warehouse, run_id, base_url, CLIENT_ID, CLIENT_SECRET, policy=FAST
    )
    return sum(pull.received for pull in pulls.values())


def _land(test_warehouse, run_id: str) -> list:
    dlt_pipeline._pipelines.clear()
    return land(EHR_FILES, test_warehouse.warehouse, run_id)


def _restore(moment: datetime) -> str:
    """`hcw restore --to` as the runbook has it; what it printed."""
    restored = subprocess.run(
        [str(settings.VENV_BIN / "hcw"), "restore", "--to", moment.strftime("%Y-%m-%d %H:%M:%S.%f%z")],
        env=dict(os.environ), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert restored.returncode == 0, restored.stdout + restored.stderr
    return restored.stdout


def test_a_restore_between_two_loads_keeps_the_first_and_the_next_runs_take_the_second(
    test_warehouse,
):
    store = FhirStore(demo_resources(patients=20))
    server = DemoFhirServer(store, CLIENT_ID, CLIENT_SECRET)
    base_url = server.start()
    landing = test_warehouse.landing_dir / "ehr"
    try:
        backup.back_up(test_warehouse.warehouse, keep=2)

        # the first load: two extracts and every FHIR resource
        write_extracts(landing, files=2, rows=40, defects_per_file=2, seed=1)
        assert sum(o.rows_received for o in _land(test_warehouse, "load_1")) == 80
        first_pull = _pull(test_warehouse, base_url, "fhir_1")
        after_first = _counts(test_warehouse)
        time.sleep(1.5)
        moment = datetime.now(UTC)
        time.sleep(1.5)

        # the second load: one more extract, three patients changed on the FHIR server
        [later_file] = write_extracts(
            landing, files=1, rows=30, defects_per_file=1, seed=2, first_day=date(2024, 5, 1)
        )
        assert [o.rows_received for o in _land(test_warehouse, "load_2")] == [30]
        for patient in store.search("Patient", None)[:3]:
            store.update("Patient", patient["id"], {"active": False})
        assert _pull(test_warehouse, base_url, "fhir_2") == 3
        after_second = _counts(test_warehouse)
        assert after_second["ehr rows"] > after_first["ehr rows"]
        assert after_first["fhir inactive patients"] == 0
        assert after_second["fhir inactive patients"] == 3
        time.sleep(1.5)
        after_second_moment = datetime.now(UTC)
        time.sleep(1.5)

        restored = _restore(moment)
        assert "1 landed files back in landing" in restored
        # the vitals processor's next start takes a baseline (monitoring/baseline.py)
        assert rows(
            test_warehouse,
            "select reason from monitoring.baseline_requests where started_at is null",
        ) == [("restore",)]

        # exactly the first load; the second load's file waits in landing again
        assert _counts(test_warehouse) == after_first
        assert (landing / later_file.name).exists()

        # the next runs: the file lands again, the changed patients are pulled again
        [again] = _land(test_warehouse, "after_restore")
        assert (again.file_name, again.rows_received) == (later_file.name, 30)
        assert again.rows_received == again.rows_loaded + again.rows_quarantined
        assert _pull(test_warehouse, base_url, "fhir_after_restore") == 3
        assert _counts(test_warehouse) == after_second
        assert first_pull == after_first["fhir resources"]
        unreconciled = rows(
            test_warehouse,
            "select count(*) from audit.file_ledger"
            " where rows_received <> rows_loaded + rows_quarantined",
        )[0][0]
        assert unreconciled == 0

        # a second restore, to a moment before the first restore: along the timeline live then,
        # not the first restore's branch (which would stop it short, at the first moment)
        _restore(after_second_moment)
        assert _counts(test_warehouse) == after_second
        # the record of access survives both: nothing of it was taken back
        kept = test_warehouse.var_dir / "pgdata" / "server_log"
        for replaced in test_warehouse.var_dir.glob("pgdata.before-restore-*"):
            assert {p.name for p in (replaced / "server_log").iterdir()} <= {
                p.name for p in kept.iterdir()
            }
    finally:
        server.stop()
