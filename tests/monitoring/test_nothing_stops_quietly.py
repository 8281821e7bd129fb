"""Nothing stops quietly (monitoring/operational.py), by the vitals processor running as its own
process: a full disk (ENOSPC injected into its writes), a write error injected into the
warehouse, a file whose scoring fails for its own content (injected), a device clock 10 minutes ahead and a notification channel down each raise an
operational alert within the configured time and fail `vitals_feed`'s check (health.check); once
cleared, the alert resolves and every reading is scored exactly once."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from common import settings
from demo.ward_vitals import drop, patient_on
from monitoring import health, processor
from tests.monitoring.live import (
    CALM,
    ProcessorProcess,
    WebhookSink,
    execute,
    micro_batch,
    query,
    wait_until,
    write_config,
)
from warehouse.throwaway import free_port

FAILING_SECONDS, UNSENT_SECONDS, WINDOW_SECONDS = 3, 3, 8
CRITICAL = {**CALM, "heart_rate": 135, "respiratory_rate": 26,
            "blood_pressure": {"systolic": 88, "diastolic": 60}}  # fmt: skip

# Python runs a `sitecustomize` module found on its path at start: this one makes every file the
# processor opens for writing under dlt's folder fail as a full disk does, while the flag exists
ENOSPC = """
import builtins, errno, os
_open, _flag, _under = builtins.open, os.environ["INJECT_ENOSPC_FLAG"], os.environ["INJECT_ENOSPC_UNDER"]
def _full(file, mode="r", *args, **kwargs):
    if (isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+")
            and os.path.abspath(file).startswith(_under) and os.path.exists(_flag)):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
    return _open(file, mode, *args, **kwargs)
builtins.open = _full
"""

# ... and this one makes the scoring of any file with a reading of one device taken before a
# moment fail, as a content that breaks the scoring would (no such content is known; the
# processor's answer to one is what is tested), while the flag exists
POISON = """
import importlib.abc, importlib.util, os, sys
_flag, _device = os.environ["INJECT_POISON_FLAG"], os.environ["INJECT_POISON_DEVICE"]
_before = int(os.environ["INJECT_POISON_BEFORE_US"])
class _Poisoned(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "monitoring.news2_inputs":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            resolve = module.resolve
            def poisoned(readings, settings):
                mine = (readings["device_id"] == _device) & (readings["measured_us"] < _before)
                if os.path.exists(_flag) and mine.any():
                    raise ValueError("injected: this file's readings break the scoring")
                return resolve(readings, settings)
            module.resolve = poisoned
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, _Poisoned())
"""


def _config(folder: Path, max_quarantined_readings: int) -> Path:
    """Short limits."""
    return write_config(
        folder, settle_seconds=0, poll_seconds=0.05,
        operational={"window_seconds": WINDOW_SECONDS, "max_failing_seconds": FAILING_SECONDS,
                     "max_unsent_seconds": UNSENT_SECONDS,
                     "max_quarantined_readings": max_quarantined_readings},
    )  # fmt: skip


def _raised(warehouse, condition: str) -> list[tuple]:
    return query(
        warehouse, "clinical_ops",
        "select raised_at, resolved_at, detail from monitoring.operational_alerts"
        " where condition = %s order by raised_at",
        (condition,),
    )  # fmt: skip


def _open(warehouse, condition: str):
    return [row for row in _raised(warehouse, condition) if row[1] is None]


def _unhealthy(warehouse) -> str:
    """What `vitals_feed`'s check says (it must fail)."""
    with pytest.raises(health.ProcessorUnhealthy) as failed:
        health.check(warehouse, heartbeat_seconds=60, max_lag_seconds=3600)
    return str(failed.value)


def _readings_of(warehouse, bed: int) -> list[tuple]:
    return query(
        warehouse, warehouse.admin_user,
        "select r.reading_key, r.measured_at from monitoring.readings as r"
        " join monitoring.patient_keys as k using (patient_key) where k.patient_id = %s",
        (patient_on(bed),),
    )  # fmt: skip


def _scored_once(warehouse, bed: int, sent: list[datetime]) -> None:
    """Every reading sent for `bed` scored, once."""
    wait_until(lambda: len(_readings_of(warehouse, bed)) >= len(sent), 60, f"bed {bed} scored")
    time.sleep(0.5)  # anything scored twice would show now
    readings = _readings_of(warehouse, bed)
    assert sorted(at for _, at in readings) == sorted(sent)
    assert len({key for key, _ in readings}) == len(readings)


def _health_back(warehouse) -> None:
    wait_until(
        lambda: not query(
            warehouse, "steward",
            "select 1 from monitoring.operational_alerts where resolved_at is null",
        ),
        60, "every operational alert resolved",
    )  # fmt: skip
    health.check(warehouse, heartbeat_seconds=60, max_lag_seconds=3600)


@contextmanager
def _processor(
    folder: Path, webhook: str | None = None, max_quarantined_readings: int = 0, **env: str
) -> Iterator[WebhookSink]:
    """The processor running as its own process (its webhook a sink kept here unless `webhook`
    names another), stopped cleanly at the end; any reading quarantined counts unless
    `max_quarantined_readings` says otherwise (the default lets a stray one pass)."""
    with WebhookSink() as sink:
        config = _config(folder, max_quarantined_readings)
        processor = ProcessorProcess(config, webhook or sink.url, folder / "processor.log")
        processor.env.update(env)
        processor.start()
        try:
            yield sink
        finally:
            assert processor.stop() == 0, processor.log.read_text()[-3000:]


def _alerted(warehouse, condition: str, drop_file, within: float) -> str:
    """Drop the file, wait for the operational alert and say how long it took; its detail."""
    dropped_at = time.time()
    drop_file()
    wait_until(lambda: _open(warehouse, condition), 60, f"the operational alert {condition}")
    took = time.time() - dropped_at
    [(_, _, detail)] = _open(warehouse, condition)
    print(f"{condition}: operational alert {took:.1f} s after the file: {detail}")
    assert took < within
    assert condition in _unhealthy(warehouse)  # vitals_feed's check fails, naming it
    return detail


def _injection(tmp_path: Path, sitecustomize: str, flag_name: str) -> tuple[Path, Path]:
    """A folder holding `sitecustomize` (for the processor's PYTHONPATH), and the flag file that
    keeps the injection acting while it exists."""
    injection = tmp_path / "injection"
    injection.mkdir()
    (injection / "sitecustomize.py").write_text(textwrap.dedent(sitecustomize))
    flag = tmp_path / flag_name
    flag.touch()
    return injection, flag


def _batch(bed: int, start: datetime, count: int, values=CALM) -> tuple[str, str, list]:
    times = [start + timedelta(seconds=index) for index in range(count)]
    name, text = micro_batch(bed, [(f"BED_{bed:04d}", at, values) for at in times])
    return name, text, times


def test_a_full_disk_holds_the_file_in_landing_and_raises_an_operational_alert(
    test_warehouse, tmp_path
):
    warehouse, landing = test_warehouse.warehouse, test_warehouse.landing_dir / "vitals"
    injection, flag = _injection(tmp_path, ENOSPC, "disk_full")
    name, text, sent = _batch(51, datetime.now(UTC) - timedelta(minutes=1), 3)
    injected = {"PYTHONPATH": str(injection), "INJECT_ENOSPC_FLAG": str(flag),
                "INJECT_ENOSPC_UNDER": str(settings.DLT_DATA_DIR)}  # fmt: skip
    with _processor(tmp_path, **injected) as sink:
        detail = _alerted(
            warehouse, "landing_failing", lambda: drop(landing, name, text), FAILING_SECONDS + 10
        )
        assert "No space left on device" in detail and name in detail
        # held in landing, not set aside
        assert (landing / name).exists()
        assert not list((settings.QUARANTINE_DIR / "vitals").glob(f"*{name}*"))
        wait_until(lambda: sink.of_kind("operational"), 30, "the operational notification")
        flag.unlink()  # space again
        _scored_once(warehouse, 51, sent)
        _health_back(warehouse)
    assert not (landing / name).exists()


def test_a_write_error_in_the_warehouse_raises_an_operational_alert_and_loses_nothing(
    test_warehouse, tmp_path
):
    warehouse = test_warehouse.warehouse
    execute(
        warehouse, warehouse.admin_user,
        """
        create function monitoring.refuse_write() returns trigger language plpgsql as
            $$ begin raise exception 'injected write error'; end $$;
        create trigger refuse_write before insert on monitoring.readings
            for each statement execute function monitoring.refuse_write();
        """,
    )  # fmt: skip
    name, text, sent = _batch(52, datetime.now(UTC) - timedelta(minutes=1), 3)
    landing = test_warehouse.landing_dir / "vitals"
    with _processor(tmp_path):
        _alerted(
            warehouse, "scoring_failing", lambda: drop(landing, name, text), FAILING_SECONDS + 10
        )
        assert _readings_of(warehouse, 52) == []
        execute(warehouse, warehouse.admin_user, "drop trigger refuse_write on monitoring.readings")
        _scored_once(warehouse, 52, sent)
        _health_back(warehouse)


def test_a_device_clock_10_minutes_ahead_is_scored_and_raises_an_operational_alert(
    test_warehouse, tmp_path
):
    warehouse = test_warehouse.warehouse
    now = datetime.now(UTC)
    ahead_name, ahead_text, ahead = _batch(53, now + timedelta(minutes=10), 2)
    landing = test_warehouse.landing_dir / "vitals"
    with _processor(tmp_path):
        detail = _alerted(
            warehouse, "clock_ahead", lambda: drop(landing, ahead_name, ahead_text), 10
        )
        assert "BED_0053" in detail
        _scored_once(warehouse, 53, ahead)  # scored, not quarantined
        # the device's clock set right: its next readings are scored too, the alert resolves
        # once the window has passed without a reading ahead
        name, text, right = _batch(53, datetime.now(UTC), 2)
        drop(landing, name, text)
        _scored_once(warehouse, 53, ahead + right)
        _health_back(warehouse)
    [(quarantined,)] = query(
        warehouse, "steward",
        "select coalesce(sum(rows_quarantined), 0) from audit.file_ledger where file_name = %s",
        (ahead_name,),
    )  # fmt: skip
    assert quarantined == 0


def test_a_notification_channel_down_raises_an_operational_alert_and_fails_the_check(
    test_warehouse, tmp_path
):
    warehouse = test_warehouse.warehouse
    port = free_port()  # nothing answers there yet: the channel is down
    name, text, sent = _batch(54, datetime.now(UTC) - timedelta(minutes=1), 2, CRITICAL)
    landing = test_warehouse.landing_dir / "vitals"
    with _processor(tmp_path, webhook=f"http://127.0.0.1:{port}/alerts"):
        _alerted(
            warehouse, "notifications_unsent", lambda: drop(landing, name, text),
            UNSENT_SECONDS + 10,
        )  # fmt: skip
        with WebhookSink(port=port) as sink:  # the channel back
            wait_until(lambda: sink.of_kind("raised"), 120, "the clinical alert delivered")
            wait_until(lambda: sink.of_kind("operational"), 120, "the operational alert delivered")
            _health_back(warehouse)
        _scored_once(warehouse, 54, sent)


def test_a_local_time_of_the_repeated_hour_nothing_settles_is_held_with_an_operational_alert(
    test_warehouse, tmp_path
):
    warehouse = test_warehouse.warehouse
    name, text, _ = _batch(55, datetime.now(UTC) - timedelta(minutes=1), 1)
    # the device sent New York local time without an offset, in the hour that happened twice
    text = text.replace(text.split('"timestamp": "')[1].split('"')[0], "2024-11-03T01:20:00")
    landing = test_warehouse.landing_dir / "vitals"
    # one such reading is enough, under the default limit for quarantined readings in general
    with _processor(tmp_path, max_quarantined_readings=10):
        detail = _alerted(warehouse, "times_unsettled", lambda: drop(landing, name, text), 30)
        assert detail.startswith("1 vitals readings held in quarantine") and name in detail
        # a file that landed no reading is checkpointed all the same (in a warehouse where no
        # reading ever landed, its raw table does not exist yet)
        wait_until(
            lambda: query(
                warehouse, "monitor",
                "select 1 from monitoring.processed_files where file_name = %s", (name,),
            ),
            30, "the file's checkpoint",
        )  # fmt: skip
    # held, with its reason, never dropped
    [(received, loaded, quarantined)] = query(
        warehouse, "steward",
        "select rows_received, rows_loaded, rows_quarantined from audit.file_ledger"
        " where file_name = %s",
        (name,),
    )  # fmt: skip
    assert (received, loaded, quarantined) == (1, 0, 1)
    [(rule, reason)] = query(
        warehouse, "steward",
        "select rule, reason from quarantine.rejected_records where file_name = %s",
        (name,),
    )  # fmt: skip
    assert rule == "timestamp_is_timestamp" and "repeated hour" in reason


def test_a_file_whose_scoring_fails_is_put_by_and_every_later_patient_is_still_alerted(
    test_warehouse, tmp_path
):
    warehouse, landing = test_warehouse.warehouse, test_warehouse.landing_dir / "vitals"
    injection, flag = _injection(tmp_path, POISON, "poisoned")
    start = datetime.now(UTC) - timedelta(minutes=2)
    # bed 56 critical in a file whose scoring fails, then calm in the next file of its device
    poison_name, poison_text, poisoned = _batch(56, start, 2, CRITICAL)
    calm_name, calm_text, calm = _batch(56, start + timedelta(minutes=1), 2)
    name, text, critical = _batch(57, start, 2, CRITICAL)
    injected = {"PYTHONPATH": str(injection), "INJECT_POISON_FLAG": str(flag),
                "INJECT_POISON_DEVICE": "BED_0056",
                "INJECT_POISON_BEFORE_US": str(int(calm[0].timestamp() * 1_000_000))}  # fmt: skip
    with _processor(tmp_path, **injected) as sink:
        detail = _alerted(
            warehouse, "files_unscorable", lambda: drop(landing, poison_name, poison_text), 10
        )
        assert poison_name in detail and "2 readings" in detail
        # the error's type and the project's line it came through, never its text nor a patient
        assert "ValueError at " in detail and "break the scoring" not in detail
        assert patient_on(56) not in detail
        # the files after it are scored, and their patients alerted
        drop(landing, calm_name, calm_text)
        _scored_once(warehouse, 56, calm)
        drop(landing, name, text)
        _scored_once(warehouse, 57, critical)
        wait_until(lambda: sink.of_kind("raised"), 30, "bed 57's critical alert delivered")
        # mended (in life: a fix deployed, and the processor restarted): the file is scored at
        # last; older than its device's calm readings by then, yet nobody saw its critical ones:
        # they alert
        flag.unlink()
        _scored_once(warehouse, 56, calm + poisoned)
        [(alert_key,)] = query(
            warehouse, warehouse.admin_user,
            "select a.alert_key::text from monitoring.alerts as a"
            " join monitoring.patient_keys as k using (patient_key)"
            " where k.patient_id = %s and a.condition = 'critical'",
            (patient_on(56),),
        )  # fmt: skip
        wait_until(
            lambda: alert_key in {d.message["alert"] for d in sink.of_kind("raised")},
            30, "bed 56's critical alert delivered",
        )  # fmt: skip
        _health_back(warehouse)
    [(held_back,)] = query(
        warehouse, "monitor",
        "select held_back from monitoring.processed_files where file_name = %s", (poison_name,),
    )  # fmt: skip
    assert held_back  # a replay scores it as the live run did


def test_the_pause_between_tries_stays_bounded_however_many_failures():
    """Doubling from the poll, at most 30 s: after 10,000 failures too (2**10000 seconds would
    overflow a float and kill the loop that retries)."""
    assert [processor._backoff(0.5, n) for n in (1, 2, 5, 6)] == [1.0, 2.0, 16.0, 30.0]
    assert processor._backoff(0.5, 10_000) == 30.0
