"""What the monitoring tests share: a webhook that keeps what it receives, the processor run as
its own process, micro-batches dropped into landing, and the monitoring tables read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml

from common import settings
from demo.ward_vitals import patient_on
from demo.webhook_receiver import WebhookReceiver as WebhookSink
from monitoring.processor import CONFIG_FILE
from warehouse.connection import Warehouse

__all__ = ["WebhookSink"]

# a device's measurements that score NEWS2 0
CALM = {"heart_rate": 80, "blood_pressure": {"systolic": 125, "diastolic": 80},
        "temperature": 98.6, "oxygen_saturation": 97, "respiratory_rate": 16}  # fmt: skip


def write_config(folder: Path, **overrides: Any) -> Path:
    """monitoring.yml with `overrides` (nested by section, e.g. alerts={...})."""
    config = yaml.safe_load(CONFIG_FILE.read_text())
    for name, value in overrides.items():
        if isinstance(value, dict):
            config[name] = {**config[name], **value}
        else:
            config[name] = value
    path = folder / "monitoring.yml"
    path.write_text(yaml.safe_dump(config))
    return path


class ProcessorProcess:
    """`hcw processor` (as `python -m cli processor`), as `make up` starts it."""

    def __init__(self, config: Path, webhook: str, log: Path) -> None:
        self.env = {
            **os.environ,
            "MONITORING_CONFIG": str(config),
            "CLINICAL_ALERT_WEBHOOK_URL": webhook,
        }
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "processor"],
                cwd=settings.PROJECT_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no cleanup of any kind
        self.process.wait()

    def stop(self) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=60)

    def assert_alive(self) -> None:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()[
            -3000:
        ]


def wait_until(check: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(poll)
    raise AssertionError(f"waited {timeout} s for {what}")


def micro_batch(bed: int, readings: Iterable[tuple[str, datetime, dict]]) -> tuple[str, str]:
    """(file name, NDJSON text) of bed `bed`'s readings, each (device, time, measurements) with
    the measurements exactly as given (demo.ward_vitals adds noise): for scores a test chooses."""
    readings = list(readings)
    lines = [
        json.dumps({
            "device_id": device, "patient_id": patient_on(bed),
            "timestamp": at.isoformat().replace("+00:00", "Z"), "measurements": measurements,
            "device_status": "OK",
            "location": {"hospital": "General Hospital", "ward": "ICU", "room": f"{bed}"},
        })
        for device, at, measurements in readings
    ]  # fmt: skip
    first = readings[0][1]
    return f"vitals_{first:%Y%m%dT%H%M%S}_{bed:05d}.ndjson", "\n".join(lines) + "\n"


def wait_until_sent(warehouse: Warehouse, timeout: float = 30) -> None:
    """Until no notification waits unsent."""
    wait_until(
        lambda: (
            not query(
                warehouse, "monitor", "select 1 from monitoring.notifications where sent_at is null"
            )
        ),
        timeout,
        "every notification sent",
    )


def wait_for_cycles(warehouse: Warehouse, cycles: int, timeout: float = 60) -> None:
    """Until the processor recorded `cycles` heartbeats after now: a whole cycle or more ran
    since (each cycle escalates what is due, then records its heartbeat)."""
    [(now,)] = query(warehouse, "monitor", "select now()")
    seen: set = set()

    def beats() -> bool:
        [(heartbeat,)] = query(
            warehouse, "monitor", "select max(heartbeat_at) from monitoring.processor_status"
        )
        if heartbeat is not None and heartbeat > now:
            seen.add(heartbeat)
        return len(seen) >= cycles

    wait_until(beats, timeout, f"{cycles} cycles of the processor")


def query(warehouse: Warehouse, role: str, statement: str, params: Any = ()) -> list[tuple]:
    with psycopg.connect(**warehouse.connect_kwargs(role)) as conn:
        return conn.execute(statement, params).fetchall()


def execute(warehouse: Warehouse, role: str, statements: str) -> None:
    with psycopg.connect(**warehouse.connect_kwargs(role)) as conn:
        conn.execute(statements)


def processed_files(warehouse: Warehouse) -> int:
    return query(warehouse, "monitor", "select count(*) from monitoring.processed_files")[0][0]


# What a run produced, by patient id (surrogate keys differ between warehouses), every column the
# readings decide; not when rows were written. Sums of floats are compared to 6 decimals: the
# order PostgreSQL adds them in follows where rows lie on disk, which a crash can change.
SNAPSHOT = {
    "readings": """
        select k.patient_id, r.reading_key, r.sequence, r.record_position, r.ward, r.room,
            r.measured_at, r.moves_alerts, r.news2_score, r.news2_level, r.news2_parts,
            r.anomalous_vitals, round(r.z_heart_rate_bpm::numeric, 6),
            round(r.z_temperature_c::numeric, 6), round(r.z_respiratory_rate_per_min::numeric, 6)
        from monitoring.readings as r join monitoring.patient_keys as k using (patient_key)
        order by r.reading_key
    """,
    "minutes": """
        select k.patient_id, m.window_start, m.vital, m.readings, round(m.total::numeric, 6),
            round(m.total_squares::numeric, 4), m.minimum, m.maximum
        from monitoring.vitals_minute as m join monitoring.patient_keys as k using (patient_key)
        order by 1, 2, 3
    """,
    "sliding": """
        select k.patient_id, s.window_end, s.vital, s.readings, round(s.mean::numeric, 6),
            s.minimum, s.maximum
        from monitoring.vitals_sliding_5min as s
        join monitoring.patient_keys as k using (patient_key)
        order by 1, 2, 3
    """,
    "alerts": """
        select k.patient_id, a.condition, a.ward, a.room, a.raised_at, a.raised_sequence,
            a.raised_reading_key, a.news2_score, a.news2_parts, a.resolved_at,
            a.resolved_sequence, a.resolution
        from monitoring.alerts as a join monitoring.patient_keys as k using (patient_key)
        order by a.raised_at, k.patient_id, a.condition
    """,
}


def snapshot(warehouse: Warehouse) -> dict[str, list[tuple]]:
    return {name: query(warehouse, warehouse.admin_user, sql) for name, sql in SNAPSHOT.items()}
