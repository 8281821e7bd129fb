-- Real-time monitoring (monitoring/): the vitals processor writes here as `monitor`;
-- clinical operations read the alerts and acknowledge them as `clinical_ops`; analysts never (ward,
-- room and exact times with a patient's key are no de-identified data). Run by bootstrap after
-- schemas.sql.
create schema if not exists monitoring;
revoke all on schema monitoring from public;
grant usage on schema monitoring to monitor, clinical_ops, steward;

-- The processor reads what landed (and, to resume, the ledger).
grant usage on schema raw_vitals to monitor;
grant select on all tables in schema raw_vitals to monitor;
alter default privileges for role loader in schema raw_vitals grant select on tables to monitor;
grant usage on schema audit to monitor;
grant select on audit.file_ledger to monitor;
-- each cycle looks for the vitals files landed in the last hour and not scored
create index if not exists file_ledger_vitals_recorded_at on audit.file_ledger (recorded_at)
    where source = 'vitals';

-- Monitoring's own surrogate key per patient: random, assigned when a patient's first reading is
-- scored, readable by the processor only. Not the de-identified layer's key (the crosswalk's):
-- clinical operations see exact times, wards and rooms with this key, which must not link to what
-- analysts read. Patient ids are read as dbt reads them (trimmed, upper case).
create table if not exists monitoring.patient_keys (
    patient_id text primary key,
    patient_key uuid not null unique default gen_random_uuid(),
    assigned_at timestamptz not null default now()
);

-- The checkpoint: each landed file the processor has scored, in the order it scored them. A file
-- is scored in one transaction with everything it produced below.
create table if not exists monitoring.processed_files (
    sequence bigint primary key,
    file_hash text not null unique,
    file_name text not null,
    readings integer not null,
    new_readings integer not null,
    watermark_at timestamptz,          -- the newest reading time seen once this file was scored
    found_at timestamptz,              -- when the processor first saw the file in landing
    processed_at timestamptz not null default now()
);
create index if not exists processed_files_processed_at on monitoring.processed_files (processed_at);

-- Every reading once (by reading key: device and time), scored.
create table if not exists monitoring.readings (
    reading_key uuid primary key,
    sequence bigint not null,
    record_position integer not null,
    patient_key uuid not null,
    ward text,
    room text,
    measured_at timestamptz not null,
    moves_alerts boolean not null,     -- false for a reading older than the patient's newest
    heart_rate_bpm double precision,
    systolic_mmhg double precision,
    diastolic_mmhg double precision,
    temperature_c double precision,
    oxygen_saturation_pct double precision,
    respiratory_rate_per_min double precision,
    z_heart_rate_bpm double precision,
    z_systolic_mmhg double precision,
    z_diastolic_mmhg double precision,
    z_temperature_c double precision,
    z_oxygen_saturation_pct double precision,
    z_respiratory_rate_per_min double precision,
    anomalous_vitals text[] not null default '{}',
    news2_score smallint not null,
    news2_level text not null,
    news2_complete boolean not null,
    news2_parts jsonb not null
);
create index if not exists readings_patient_time on monitoring.readings (patient_key, measured_at);
create index if not exists readings_sequence on monitoring.readings (sequence);
create index if not exists readings_measured_at on monitoring.readings (measured_at);

-- One-minute tumbling windows, recomputed from monitoring.readings for the minutes a file touched.
create table if not exists monitoring.vitals_minute (
    patient_key uuid not null,
    window_start timestamptz not null,
    vital text not null,
    readings integer not null,
    total double precision not null,
    total_squares double precision not null,
    minimum double precision not null,
    maximum double precision not null,
    mean double precision not null,
    primary key (patient_key, window_start, vital)
);

-- Five-minute windows sliding by a minute, made of the tumbling ones: the window ending at
-- window_end (exclusive) covers the five minutes before it.
create or replace view monitoring.vitals_sliding_5min as
select
    patient_key,
    vital,
    window_start + interval '1 minute' as window_end,
    sum(readings) over five_minutes as readings,
    sum(total) over five_minutes / sum(readings) over five_minutes as mean,
    min(minimum) over five_minutes as minimum,
    max(maximum) over five_minutes as maximum
from monitoring.vitals_minute
window five_minutes as (
    partition by patient_key, vital order by window_start
    range between interval '4 minutes' preceding and current row
);

create table if not exists monitoring.alerts (
    alert_key uuid primary key,
    patient_key uuid not null,
    ward text,
    room text,
    condition text not null check (condition in ('warning', 'critical')),
    raised_at timestamptz not null,           -- the raising reading's time
    raised_sequence bigint not null,
    raised_reading_key uuid not null,
    news2_score smallint not null,
    news2_parts jsonb not null,
    recorded_at timestamptz not null default now(),
    escalated_at timestamptz,
    acknowledged_by text,
    acknowledged_at timestamptz,
    resolved_at timestamptz,                  -- the resolving reading's time
    resolved_sequence bigint,
    resolution text check (resolution in ('recovered', 'superseded'))
);
create index if not exists alerts_open on monitoring.alerts (patient_key) where resolved_at is null;

-- The outbox: each notification is written with the alert that needs it and sent after commit;
-- its key (alert and kind) is also its idempotency key, so none is made twice.
create table if not exists monitoring.notifications (
    notification_key uuid primary key,
    alert_key uuid not null references monitoring.alerts,
    kind text not null check (kind in ('raised', 'escalated')),
    message jsonb not null,
    created_at timestamptz not null default now(),
    attempts integer not null default 0,
    last_error text,
    next_attempt_at timestamptz not null default now(),  -- backs off while the channel fails
    sent_at timestamptz
);
create index if not exists notifications_unsent on monitoring.notifications (next_attempt_at)
    where sent_at is null;

-- Health: one row, rewritten at every checkpoint and idle poll.
create table if not exists monitoring.processor_status (
    processor text primary key,
    last_checkpoint_at timestamptz,
    last_sequence bigint,
    newest_reading_processed_at timestamptz,
    files_waiting integer not null default 0,
    oldest_waiting_seconds double precision not null default 0,
    readings_per_second double precision not null default 0,
    notifications_unsent integer not null default 0,
    oldest_unsent_seconds double precision not null default 0,
    files_set_aside integer not null default 0,
    heartbeat_at timestamptz not null default now()
);

-- the processor: no deletes but of readings (a replay rescoring a file), no rewriting of who
-- acknowledged
grant select, insert, update on all tables in schema monitoring to monitor;
grant delete on monitoring.readings to monitor;
revoke update on monitoring.alerts from monitor;
grant update (escalated_at, raised_sequence, news2_score, news2_parts, resolved_at,
    resolved_sequence, resolution) on monitoring.alerts to monitor;
grant select on monitoring.vitals_sliding_5min to monitor;
-- clinical operations: the alerts without the reading and checkpoint they came from, the windows,
-- the processor's health; acknowledging is their only write
grant select (alert_key, patient_key, ward, room, condition, raised_at, news2_score, news2_parts,
    recorded_at, escalated_at, acknowledged_by, acknowledged_at, resolved_at, resolution)
    on monitoring.alerts to clinical_ops;
grant update (acknowledged_by, acknowledged_at) on monitoring.alerts to clinical_ops;
grant select on monitoring.processor_status, monitoring.vitals_minute,
    monitoring.vitals_sliding_5min to clinical_ops;
grant select on monitoring.processor_status, monitoring.processed_files to steward;
