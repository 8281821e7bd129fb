"""monitoring.readings and monitoring.vitals_minute by day (monitoring/partitions.py, migration
0021), by the vitals processor running as its own process: each day's rows in a partition of its
own, made when the day's first reading is scored; a query of one day reads that day's partition
only; retention drops whole days older than configured, counted back from the newest reading;
the processor's role can make and drop partitions only through the two functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from demo.ward_vitals import drop
from tests.monitoring.live import (
    CALM,
    ProcessorProcess,
    WebhookSink,
    micro_batch,
    processed_files,
    query,
    wait_until,
    write_config,
)
from warehouse.connection import Warehouse

DAYS = [datetime(2024, 1, day, 12, 0, tzinfo=UTC) for day in (1, 5, 10)]
READINGS_A_DAY = 3


def _partitions(warehouse, parent: str) -> dict[str, int]:
    """Each partition of `parent` and its rows."""
    names = [
        name
        for (name,) in query(
            warehouse, warehouse.admin_user,
            "select c.relname from pg_inherits join pg_class as c on c.oid = inhrelid"
            " where inhparent = %s::regclass order by 1",
            (f"monitoring.{parent}",),
        )
    ]  # fmt: skip
    return {
        name: query(warehouse, warehouse.admin_user, f"select count(*) from monitoring.{name}")[0][
            0
        ]
        for name in names
    }


def _run(test_warehouse, folder, files, **retention) -> None:
    config = write_config(folder, settle_seconds=0, poll_seconds=0.05, retention=retention)
    warehouse = test_warehouse.warehouse
    before = processed_files(warehouse)
    with WebhookSink() as sink:
        processor = ProcessorProcess(config, sink.url, folder / "processor.log")
        processor.start()
        try:
            for name, text in files:
                drop(test_warehouse.landing_dir / "vitals", name, text)
            wait_until(lambda: processed_files(warehouse) == before + len(files), 60, "the files")
            wait_until(lambda: "retention" in processor.log.read_text() or not retention, 30,
                       "retention")  # fmt: skip
        finally:
            assert processor.stop() == 0, processor.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def by_day(test_warehouse, tmp_path_factory):
    files = [
        micro_batch(60 + index, [
            (f"BED_{60 + index:04d}", day + timedelta(seconds=second), CALM)
            for second in range(READINGS_A_DAY)
        ])
        for index, day in enumerate(DAYS)
    ]  # fmt: skip
    _run(test_warehouse, tmp_path_factory.mktemp("partitions"), files)
    warehouse = test_warehouse.warehouse
    # as they are before the retention test, whichever order the tests run in
    return ByDay(
        warehouse,
        _partitions(warehouse, "readings"),
        _partitions(warehouse, "vitals_minute"),
        _plan_of_one_day(warehouse),
    )


def _plan_of_one_day(warehouse) -> str:
    rows = query(
        warehouse, warehouse.admin_user,
        "explain select count(*) from monitoring.readings"
        " where measured_at >= '2024-01-05' and measured_at < '2024-01-06'",
    )  # fmt: skip
    return "\n".join(line for (line,) in rows)


@dataclass(frozen=True)
class ByDay:
    warehouse: Warehouse
    readings: dict[str, int]  # partition -> rows
    minutes: dict[str, int]
    plan: str  # of a query of 2024-01-05


def test_each_day_s_readings_and_minutes_are_in_a_partition_of_their_own(by_day):
    readings = by_day.readings
    print("readings:", readings)
    assert readings == {
        "readings_20240101": READINGS_A_DAY,
        "readings_20240105": READINGS_A_DAY,
        "readings_20240110": READINGS_A_DAY,
    }
    minutes = by_day.minutes
    assert set(minutes) == {
        "vitals_minute_20240101",
        "vitals_minute_20240105",
        "vitals_minute_20240110",
    }
    assert all(rows > 0 for rows in minutes.values())


def test_a_query_of_one_day_reads_that_day_s_partition_only(by_day):
    plan = by_day.plan
    print(plan)
    assert "readings_20240105" in plan
    assert "readings_20240101" not in plan and "readings_20240110" not in plan


def test_the_processor_s_role_makes_and_drops_partitions_through_the_functions_only(by_day):
    warehouse = by_day.warehouse
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # a day retention keeps
        query(warehouse, "monitor", "drop table monitoring.readings_20240110")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        query(
            warehouse, "monitor",
            "create table monitoring.readings_20240102 partition of monitoring.readings"
            " for values from ('2024-01-02') to ('2024-01-03')",
        )  # fmt: skip
    with pytest.raises(psycopg.errors.RaiseException, match="not a partitioned monitoring table"):
        query(
            warehouse, "monitor", "select monitoring.drop_partitions_before('alerts', '2030-01-01')"
        )
    for role in ("clinical_ops", "steward", "analyst"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            query(
                warehouse, role, "select monitoring.ensure_partitions('2024-02-01', '2024-02-01')"
            )


def test_retention_drops_whole_days_counted_back_from_the_newest_reading(
    test_warehouse, by_day, tmp_path
):
    # newest reading 2024-01-10 (long ago, but the feed's own newest): readings kept 3 days,
    # minute windows 7
    warehouse = by_day.warehouse
    _run(test_warehouse, tmp_path, [], readings_days=3, minute_windows_days=7)
    assert _partitions(warehouse, "readings") == {"readings_20240110": READINGS_A_DAY}
    assert set(_partitions(warehouse, "vitals_minute")) == {
        "vitals_minute_20240105", "vitals_minute_20240110",
    }  # fmt: skip
    # the kept day's rows are all there
    [(readings,)] = query(
        warehouse, warehouse.admin_user, "select count(*) from monitoring.readings"
    )
    assert readings == READINGS_A_DAY


def test_the_warehouse_refuses_to_drop_the_last_week_or_make_days_far_ahead(by_day):
    warehouse = by_day.warehouse
    with pytest.raises(psycopg.errors.RaiseException, match="within the last week"):
        query(
            warehouse,
            "monitor",
            "select monitoring.drop_partitions_before('readings', current_date)",
        )
    with pytest.raises(psycopg.errors.RaiseException, match="more than two days ahead"):
        query(
            warehouse, "monitor",
            "select monitoring.ensure_partitions(current_date, current_date + 30)",
        )  # fmt: skip
