"""The processor's reads and writes in the warehouse (schema `monitoring`, as `monitor`).

Everything one landed file produces (its scored readings, the tumbling windows it touched, the
alerts it raised or resolved, their notifications) is written in one transaction with the file's
row in monitoring.processed_files: the checkpoint. A crash before the commit leaves nothing of it;
after the commit the file is never scored again.

What the processor remembers between files is rebuilt from these tables as of any checkpoint
(`state_as_of`): on a restart, as of the last one; on a replay, as of the file before the range.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv

from monitoring.alert_rules import AlertChange, PatientState
from monitoring.news2 import LEVEL_NAMES
from monitoring.news2_inputs import PAYLOAD
from monitoring.windows import US, VITALS

# A landed file's valid readings, typed as the processor scores them (temperatures in Celsius, as
# staging has them), in the order they were in the file.
LANDED_READINGS = """
select
    md5(device_id || '|' || (extract(epoch from "timestamp") * 1000000)::bigint)::uuid::text
        as reading_key,
    device_id,
    upper(trim(patient_id)) as patient_id,
    (extract(epoch from "timestamp") * 1000000)::bigint as measured_us,
    measurements__heart_rate::float8 as heart_rate_bpm,
    measurements__blood_pressure__systolic::float8 as systolic_mmhg,
    measurements__blood_pressure__diastolic::float8 as diastolic_mmhg,
    round(((measurements__temperature - 32) * 5 / 9)::numeric, 2)::float8 as temperature_c,
    measurements__oxygen_saturation::float8 as oxygen_saturation_pct,
    measurements__respiratory_rate::float8 as respiratory_rate_per_min,
    location__ward as ward,
    location__room as room,
    _record_position as record_position,
    measurements__consciousness,
    measurements__supplemental_oxygen,
    measurements__spo2_scale
from raw_vitals.readings
where _file_key = %s
order by _record_position
"""
LANDED_COLUMNS = [
    "reading_key", "device_id", "patient_id", "measured_us", *VITALS, "ward", "room", "record_position",
    *PAYLOAD.values(),
]  # fmt: skip

READING_COLUMNS = [
    "reading_key", "sequence", "record_position", "patient_key", "device_id", "ward", "room",
    "measured_at", "moves_alerts", "settles", *VITALS, *(f"z_{vital}" for vital in VITALS), "anomalous_vitals",
    "artefact_vitals", "extreme_vitals", "news2_score", "news2_level", "news2_complete",
    "news2_parts", "consciousness", "on_oxygen", "spo2_scale", "news2_assumed", "news2_not_validated",
]  # fmt: skip
LIST_COLUMNS = ("anomalous_vitals", "artefact_vitals", "extreme_vitals", "news2_assumed")  # text[]

VITAL_VALUES = ", ".join(f"('{vital}', r.{vital})" for vital in VITALS)
RECOMPUTE_MINUTES = f"""
insert into monitoring.vitals_minute as minute
    (patient_key, window_start, vital, readings, total, total_squares, minimum, maximum, mean)
select
    touched.patient_key,
    touched.window_start,
    v.vital,
    count(*),
    sum(v.value),
    sum(v.value * v.value),
    min(v.value),
    max(v.value),
    avg(v.value)
from unnest(%(patients)s::uuid[], %(starts)s::timestamptz[]) as touched (patient_key, window_start)
join monitoring.readings as r
    on r.patient_key = touched.patient_key
    and r.measured_at >= touched.window_start
    and r.measured_at < touched.window_start + make_interval(secs => %(width)s)
cross join lateral (values {VITAL_VALUES}) as v (vital, value)
where v.value is not null
group by touched.patient_key, touched.window_start, v.vital
on conflict (patient_key, window_start, vital) do update set
    readings = excluded.readings,
    total = excluded.total,
    total_squares = excluded.total_squares,
    minimum = excluded.minimum,
    maximum = excluded.maximum,
    mean = excluded.mean
"""


HISTORY_COLUMNS = ["patient_key", "device_id", "measured_us", *VITALS]


def history_frame(rows) -> pd.DataFrame:
    """Readings of the anomaly window, typed: (patient_key, device_id, measured_us, *VITALS); a
    reading scored before readings kept their device (migration 0016) has device ''."""
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    frame["device_id"] = frame["device_id"].fillna("")
    return frame.astype({"measured_us": "int64", **dict.fromkeys(VITALS, "float64")})


@dataclass
class ProcessorState:
    """What scoring the next file needs: the last checkpoint, the newest reading time seen, the
    readings of the anomaly window, and each patient's alert state."""

    sequence: int = 0
    watermark_us: int | None = None
    history: pd.DataFrame = field(default_factory=lambda: history_frame([]))
    patients: dict[str, PatientState] = field(default_factory=dict)

    def remember(self, readings: pd.DataFrame) -> None:
        """Add scored readings to the anomaly window's history."""
        self.history = pd.concat([self.history, history_frame(readings)], ignore_index=True)

    def prune(self, window_seconds: float) -> None:
        """Keep only the readings the next file's anomaly windows can reach."""
        if self.watermark_us is not None:
            oldest = self.watermark_us - int(window_seconds * US)
            self.history = self.history[self.history["measured_us"] >= oldest].reset_index(
                drop=True
            )


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def to_us(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - EPOCH) // MICROSECOND


def at(us: int) -> datetime:
    return EPOCH + int(us) * MICROSECOND


def state_as_of(conn: psycopg.Connection, sequence: int, window_seconds: float) -> ProcessorState:
    """The processor's state right after file `sequence` was scored (0: before any)."""
    state = ProcessorState(sequence=sequence)
    if sequence == 0:
        return state
    watermark = conn.execute(
        "select max(watermark_at) from monitoring.processed_files where sequence <= %s",
        (sequence,),
    ).fetchone()[0]
    state.watermark_us = to_us(watermark)
    rows = conn.execute(
        f"""
        select patient_key::text, device_id, (extract(epoch from measured_at) * 1000000)::bigint,
            {", ".join(VITALS)}
        from monitoring.readings
        where sequence <= %s and measured_at >= %s::timestamptz - make_interval(secs => %s)
        order by sequence, record_position
        """,
        (sequence, watermark, window_seconds),
    ).fetchall()
    state.history = history_frame(rows)
    # the start of each patient's spell at warning or above: the first reading at warning or
    # above after its last complete calm one that could calm it, in the order they were scored
    # (checkpoint, then time, then position: a file's readings are scored in time order).
    # Read patient by patient, through the index.
    for patient_key, warning_since in conn.execute(
        """
        select patients.patient_key::text, spell.measured_at
        from monitoring.patient_keys as patients
        left join lateral (
            select sequence, measured_at, record_position from monitoring.readings as r
            where r.patient_key = patients.patient_key and r.sequence <= %(sequence)s
                and r.moves_alerts and r.settles and r.news2_level = 'none' and r.news2_complete
            order by r.sequence desc, r.measured_at desc, r.record_position desc limit 1
        ) as calm on true
        cross join lateral (
            select r.measured_at from monitoring.readings as r
            where r.patient_key = patients.patient_key and r.sequence <= %(sequence)s
                and r.moves_alerts and r.news2_level <> 'none'
                and (calm.sequence is null
                    or (r.sequence, r.measured_at, r.record_position)
                        > (calm.sequence, calm.measured_at, calm.record_position))
            order by r.sequence, r.measured_at, r.record_position limit 1
        ) as spell
        """,
        {"sequence": sequence},
    ):
        state.patients.setdefault(patient_key, PatientState()).warning_since_us = to_us(
            warning_since
        )
    for patient_key, device_id, last_scored in conn.execute(
        NEWEST_BY_DEVICE, {"sequence": sequence}
    ):
        patient = state.patients.setdefault(patient_key, PatientState())
        patient.last_scored_us[device_id] = to_us(last_scored)
    for patient_key, condition, key, calm_since, history in conn.execute(
        OPEN_ALERTS_AS_OF, {"sequence": sequence}
    ):
        patient = state.patients.setdefault(patient_key, PatientState())
        patient.open_alerts[condition] = key
        if history:
            patient.history_alerts.add(condition)
        if calm_since is not None:
            patient.calm_since_us[condition] = to_us(calm_since)
    return state


# Each patient's devices (walked through the index, one device at a time) and the newest reading
# of each that moved alerts after checkpoint `sequence`: what makes a later one late
NEWEST_BY_DEVICE = """
select patients.patient_key::text, devices.device_id, newest.measured_at
from monitoring.patient_keys as patients
cross join lateral (
    with recursive device (device_id) as (
        (select r.device_id from monitoring.readings as r
            where r.patient_key = patients.patient_key and r.device_id is not null
            order by r.device_id limit 1)
        union all
        select (select r.device_id from monitoring.readings as r
                where r.patient_key = patients.patient_key and r.device_id > device.device_id
                order by r.device_id limit 1)
        from device where device.device_id is not null
    )
    select device_id from device where device_id is not null
) as devices
cross join lateral (
    select r.measured_at from monitoring.readings as r
    where r.patient_key = patients.patient_key and r.device_id = devices.device_id
        and r.sequence <= %(sequence)s and r.moves_alerts
    order by r.measured_at desc limit 1
) as newest
"""

# A reading at or above an alert's level (for an extreme alert: with an extreme value)
AT_OR_ABOVE = """
    case alerts.condition
        when 'critical' then r.news2_level = 'critical'
        when 'warning' then r.news2_level <> 'none'
        else r.extreme_vitals <> '{}'
    end
"""
# The alerts open after checkpoint `sequence`, each with the start of its calm spell (alert_rules:
# the first complete reading below its level that could calm the patient, since the last one at or
# above), in the order the readings were scored (checkpoint, then time, then position)
OPEN_ALERTS_AS_OF = f"""
select alerts.patient_key::text, alerts.condition, alerts.alert_key::text, calm.measured_at,
    alerts.raised_in_baseline
from monitoring.alerts as alerts
left join lateral (
    select r.sequence, r.measured_at, r.record_position from monitoring.readings as r
    where r.patient_key = alerts.patient_key and r.sequence <= %(sequence)s and r.moves_alerts
        and {AT_OR_ABOVE}
    order by r.sequence desc, r.measured_at desc, r.record_position desc limit 1
) as last_bad on true
left join lateral (
    select r.measured_at from monitoring.readings as r
    where r.patient_key = alerts.patient_key and r.sequence <= %(sequence)s and r.moves_alerts
        and r.settles and r.news2_complete and not ({AT_OR_ABOVE})
        and (r.sequence, r.measured_at, r.record_position)
            > (last_bad.sequence, last_bad.measured_at, last_bad.record_position)
    order by r.sequence, r.measured_at, r.record_position limit 1
) as calm on true
where alerts.raised_sequence <= %(sequence)s
    and (alerts.resolved_sequence is null or alerts.resolved_sequence > %(sequence)s)
"""


def last_sequence(conn: psycopg.Connection) -> int:
    return conn.execute(
        "select coalesce(max(sequence), 0) from monitoring.processed_files"
    ).fetchone()[0]


def landed_readings(conn: psycopg.Connection, file_key: int | None) -> pd.DataFrame:
    """The readings a file landed; none for None (a file that landed none)."""
    rows = [] if file_key is None else conn.execute(_landed_sql(conn), (file_key,)).fetchall()
    frame = pd.DataFrame(rows, columns=LANDED_COLUMNS)
    frame[list(VITALS)] = frame[list(VITALS)].astype("float64")
    frame["measured_us"] = frame["measured_us"].astype("int64")
    return frame


_PAYLOAD_LANDED: list[bool] = []  # once every payload column is in the raw table, it stays


def _landed_sql(conn: psycopg.Connection) -> str:
    """LANDED_READINGS, with a null for a payload column the raw table has not got yet (a
    warehouse whose files landed before the column was configured: the next landing adds it)."""
    if _PAYLOAD_LANDED:
        return LANDED_READINGS
    present = {
        name
        for (name,) in conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'raw_vitals' and table_name = 'readings'"
            " and column_name = any(%s)",
            (list(PAYLOAD.values()),),
        )
    }
    if present == set(PAYLOAD.values()):
        _PAYLOAD_LANDED.append(True)
        return LANDED_READINGS
    sql = LANDED_READINGS
    for column in set(PAYLOAD.values()) - present:
        sql = sql.replace(f"    {column}", f"    null::text as {column}")
    return sql


def patient_keys(conn: psycopg.Connection, patient_ids: list[str]) -> dict[str, str]:
    """Monitoring's surrogate key of each patient (monitoring.patient_keys); a patient seen for
    the first time gets a random one."""
    conn.execute(
        "insert into monitoring.patient_keys (patient_id) select unnest(%s::text[])"
        " on conflict (patient_id) do nothing",
        (patient_ids,),
    )
    rows = conn.execute(
        "select patient_id, patient_key::text from monitoring.patient_keys"
        " where patient_id = any(%s)",
        (patient_ids,),
    )
    return dict(rows.fetchall())


def forget_scoring(conn: psycopg.Connection, sequence: int) -> None:
    """Before a file is scored again (a replay): its readings go, the alerts its readings resolved
    are open again. Alerts it raised stay, to be raised again under the same key, keeping who
    acknowledged them; notifications stay, so none is sent twice."""
    conn.execute("delete from monitoring.readings where sequence = %s", (sequence,))
    conn.execute(
        "update monitoring.alerts set resolved_at = null, resolved_sequence = null,"
        " resolution = null where resolved_sequence = %s",
        (sequence,),
    )


def known_reading_keys(conn: psycopg.Connection, readings: pd.DataFrame) -> set[str]:
    """The keys of `readings` scored before: looked up in the partitions of their days only (a
    key is its device and time)."""
    if not len(readings):
        return set()
    rows = conn.execute(
        "select reading_key::text from monitoring.readings"
        " where measured_at between %s and %s and reading_key = any(%s::uuid[])",
        (
            at(int(readings["measured_us"].min())),
            at(int(readings["measured_us"].max())),
            readings["reading_key"].tolist(),
        ),
    )
    return {key for (key,) in rows}


def write_readings(conn: psycopg.Connection, scored: pd.DataFrame) -> None:
    """COPY the scored readings in, as CSV written by Arrow: a missing value or z-score (NaN) is
    written as null."""
    columns = {}
    for name in READING_COLUMNS:
        if name == "measured_at":
            values = pa.array(scored["measured_us"].to_numpy(), pa.timestamp("us", tz="UTC"))
        elif name in LIST_COLUMNS:
            values = pa.array(["{" + ",".join(flags) + "}" for flags in scored[name]])
        else:
            values = pa.array(scored[name].to_numpy(), from_pandas=True)
        columns[name] = values
    buffer = io.BytesIO()
    pa_csv.write_csv(pa.table(columns), buffer, pa_csv.WriteOptions(include_header=False))
    names = ", ".join(READING_COLUMNS)
    with (
        conn.cursor() as cursor,
        cursor.copy(f"copy monitoring.readings ({names}) from stdin with (format csv)") as copy,
    ):
        copy.write(buffer.getvalue())


def recompute_minutes(
    conn: psycopg.Connection, touched: pd.DataFrame, tumbling_seconds: int
) -> None:
    conn.execute(
        RECOMPUTE_MINUTES,
        {
            "patients": touched["patient_key"].tolist(),
            "starts": [at(us) for us in touched["window_start_us"].tolist()],
            "width": tumbling_seconds,
        },
    )


def write_alert_changes(
    conn: psycopg.Connection,
    sequence: int,
    changes: list[tuple[str, AlertChange, dict]],
    replaying: bool = False,
) -> tuple[list[str], list[str]]:
    """Record raised and resolved alerts; return the keys of the alerts raised to notify, and of
    those raised by a reading of history (older than a baseline's horizon: monitoring/baseline.py),
    recorded as such, never notified nor escalated. A replay raising
    an alert that exists already rewrites its score and parts and keeps the rest: what people did
    (acknowledgement, escalation), and its resolution, which a replayed file that resolved it has
    reopened (forget_scoring) and a file after the replayed range keeps. An alert only a replay
    raises (its rules changed since) is history too: nobody is paged for a past the live run
    judged otherwise."""
    raised, as_history = [], []
    for patient_key, change, context in changes:
        if change.kind == "raised":
            history = change.reading.history or replaying
            conn.execute(
                """
                insert into monitoring.alerts (alert_key, patient_key, ward, room, condition,
                    raised_at, raised_sequence, raised_reading_key, news2_score, news2_parts,
                    extreme_vitals, raised_in_baseline, news2_inputs, news2_not_validated)
                values (%(alert)s, %(patient)s, %(ward)s, %(room)s, %(condition)s, %(at)s,
                    %(sequence)s, %(reading)s, %(score)s, %(parts)s, %(extreme)s, %(history)s,
                    %(inputs)s, %(not_validated)s)
                on conflict (alert_key) do update set
                    raised_sequence = excluded.raised_sequence,
                    news2_score = excluded.news2_score,
                    news2_parts = excluded.news2_parts,
                    extreme_vitals = excluded.extreme_vitals,
                    news2_inputs = excluded.news2_inputs,
                    news2_not_validated = excluded.news2_not_validated
                """,
                {
                    "alert": change.alert_key,
                    "patient": patient_key,
                    "ward": context["ward"],
                    "room": context["room"],
                    "condition": change.condition,
                    "at": at(change.reading.measured_us),
                    "sequence": sequence,
                    "reading": change.reading.reading_key,
                    "score": change.reading.score,
                    "parts": context["news2_parts"],
                    "extreme": list(change.reading.extreme),
                    "history": history,
                    "inputs": context["news2_inputs"],
                    "not_validated": context["news2_not_validated"],
                },
            )
            (as_history if history else raised).append(change.alert_key)
        else:
            conn.execute(
                """
                update monitoring.alerts
                set resolved_at = %s, resolved_sequence = %s, resolution = %s
                where alert_key = %s
                """,
                (at(change.reading.measured_us), sequence, change.resolution, change.alert_key),
            )
    return raised, as_history


def count_artefacts(conn: psycopg.Connection, processor: str, artefacts: int) -> None:
    """Add a file's artefact values to the processor's health row."""
    if artefacts:
        conn.execute(
            "insert into monitoring.processor_status as status (processor, artefact_values)"
            " values (%s, %s) on conflict (processor) do update"
            " set artefact_values = status.artefact_values + excluded.artefact_values",
            (processor, artefacts),
        )


def record_checkpoint(
    conn: psycopg.Connection,
    sequence: int,
    file_hash: str,
    file_name: str,
    readings: int,
    new_readings: int,
    watermark_us: int | None,
    found_at: datetime | None,
    clock_ahead: tuple[float | None, list[str]] = (None, []),
    held_back: bool = False,
) -> None:
    """The checkpoint; `clock_ahead`: how far the file's newest reading was ahead of the host's
    clock when the file was found, and the devices ahead by more than the threshold;
    `held_back`: the file was put by as unscorable before (a replay scores it so again)."""
    conn.execute(
        """
        insert into monitoring.processed_files (sequence, file_hash, file_name, readings,
            new_readings, watermark_at, found_at, clock_ahead_seconds, devices_ahead, held_back)
        values (%(sequence)s, %(hash)s, %(name)s, %(readings)s, %(new)s, %(watermark)s,
            %(found)s, %(ahead)s, %(devices)s, %(held_back)s)
        on conflict (sequence) do update set
            new_readings = excluded.new_readings, watermark_at = excluded.watermark_at
        """,
        {
            "sequence": sequence,
            "hash": file_hash,
            "name": file_name,
            "readings": readings,
            "new": new_readings,
            "watermark": None if watermark_us is None else at(watermark_us),
            "found": found_at,
            "held_back": held_back,
            "ahead": clock_ahead[0],
            "devices": clock_ahead[1],
        },
    )


def parts_json(parts: dict[str, np.ndarray]) -> list[str]:
    """Each reading's NEWS2 parts as JSON (null where the reading lacked the parameter)."""
    text = pd.Series("{", index=range(len(next(iter(parts.values())))), dtype=object)
    for number, name in enumerate(parts):
        values = pd.Series(parts[name]).astype(str).where(parts[name] >= 0, "null")
        text = text + ("" if number == 0 else ", ") + f'"{name}": ' + values
    return (text + "}").tolist()


def level_names(levels: np.ndarray) -> list[str]:
    return [LEVEL_NAMES[int(level)] for level in levels]
