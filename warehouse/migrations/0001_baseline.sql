-- 0001 baseline: the schemas, the product's own tables (audit, the file ledger, quarantine,
-- monitoring) and their grants, as main had them before versioned migrations
-- (ingestion/warehouse/sql/schemas.sql and monitoring.sql at d3b3bdf, replayed at every start).
--
-- Every statement is idempotent, so this baseline applies as well to a warehouse that main built
-- before migrations (warehouse/migrate.py brings it under migrations this way) as to a new one.
-- Migrations after it are ordinary, applied once. Tables dbt builds are never changed here.
--
-- Raw and quarantine hold PHI; staging and the crosswalk too. Analysts reach only `analytics`.

-- The database is whichever this warehouse is (`warehouse` unless WAREHOUSE_URL names another).
do $$
begin
    execute format('revoke all on database %I from public', current_database());
    execute format(
        'grant connect on database %I to loader, transformer, steward, analyst, monitor, clinical_ops',
        current_database()
    );
    execute format('grant create, temporary on database %I to loader, transformer', current_database());
    -- dbt's incremental merges join a batch to a table of millions by its unique key: with
    -- PostgreSQL's default random_page_cost (4, for spinning disks) the planner reads the whole
    -- table instead of probing the index, so an incremental build would cost like a full one.
    -- 1.1 is the usual setting for SSDs; set only for dbt's role, in this database.
    execute format(
        'alter role transformer in database %I set random_page_cost = 1.1', current_database()
    );
end
$$;
revoke all on schema public from public;

-- Landing: written by dlt as `loader`, read by dbt as `transformer` and by stewards.
create schema if not exists raw_ehr authorization loader;
create schema if not exists raw_claims authorization loader;
create schema if not exists raw_vitals authorization loader;
create schema if not exists raw_fhir authorization loader;
create schema if not exists raw_research authorization loader;
create schema if not exists quarantine authorization loader;
grant usage on schema raw_ehr, raw_claims, raw_vitals, raw_fhir, raw_research to transformer, steward;
grant usage on schema quarantine to steward;
alter default privileges for role loader in schema raw_ehr, raw_claims, raw_vitals, raw_fhir, raw_research
    grant select on tables to transformer, steward;
grant select on all tables in schema raw_ehr, raw_claims, raw_vitals, raw_fhir, raw_research
    to transformer, steward;

-- Transform: dbt as `transformer`. The de-identified layer and the marts build into build_blue or
-- build_green, whichever is not published; `analytics` holds the views that point at the
-- published one. Staging, intermediate, reference data and the crosswalk are transformer's alone.
create schema if not exists staging authorization transformer;
create schema if not exists intermediate authorization transformer;
create schema if not exists reference authorization transformer;
create schema if not exists crosswalk authorization transformer;
create schema if not exists snapshots authorization transformer;
create schema if not exists build_blue authorization transformer;
create schema if not exists build_green authorization transformer;
create schema if not exists analytics authorization transformer;
revoke all on schema crosswalk from public;
grant usage on schema analytics to analyst;

-- Operations: what every step did, for the summary, the gate and stewards.
create schema if not exists audit;
grant usage on schema audit to loader, transformer, steward;

create table if not exists audit.pipeline_runs (
    run_id text primary key,
    started_at timestamptz not null default now()
);
alter table audit.pipeline_runs add column if not exists files_duplicate integer not null default 0;
-- the DAG a run belongs to (each source has its own; the warehouse build gates and publishes)
alter table audit.pipeline_runs add column if not exists workflow text;

create table if not exists audit.file_ledger (
    file_hash text primary key,
    source text not null,
    file_name text not null,
    run_id text,
    status text not null check (status in ('loaded', 'rejected')),
    rows_received integer not null default 0,
    rows_loaded integer not null default 0,
    rows_quarantined integer not null default 0,
    reason text,
    recorded_at timestamptz not null default now()
);
alter table audit.file_ledger add column if not exists new_columns text[] not null default '{}';
alter table audit.file_ledger add column if not exists file_key bigint;
create unique index if not exists file_ledger_file_key on audit.file_ledger (file_key);
-- pending -> validating (claimed by the landed checkpoint) -> validated (expectations/landed.py)
alter table audit.file_ledger add column if not exists validation_state text not null
    default 'pending' check (validation_state in ('pending', 'validating', 'validated'));
alter table audit.file_ledger add column if not exists validated_in text;

create table if not exists audit.dbt_node_results (
    run_id text not null,
    invocation_id text not null,
    build_schema text,
    unique_id text not null,
    resource_type text not null,
    status text not null,
    failures integer,
    recorded_at timestamptz not null default now()
);

-- Airflow task failures the on-call team was emailed about, until the task succeeds again (its
-- recovery email): airflow/include/orchestration/notifications.py.
create table if not exists audit.task_failures (
    dag_id text not null,
    task_id text not null,
    run_id text not null,
    try_number integer not null,
    failed_at timestamptz not null default now(),
    recovered_at timestamptz,
    recovered_in text
);
create index if not exists task_failures_open on audit.task_failures (dag_id, task_id)
    where recovered_at is null;

create table if not exists audit.gate_results (
    run_id text not null,
    build_schema text not null,
    passed boolean not null,
    expectations_evaluated integer not null,
    expectations_failed integer not null,
    details jsonb not null,
    recorded_at timestamptz not null default now()
);
-- One row a checkpoint run: `landed` (raw batches, as loader) or `publish_gate` (a build schema).
alter table audit.gate_results add column if not exists checkpoint text not null
    default 'publish_gate';
alter table audit.gate_results add column if not exists warnings integer not null default 0;
alter table audit.gate_results alter column build_schema drop not null;

-- Quality per run, source or table, and dimension, for trends (expectations/results.py).
create table if not exists audit.quality_scores (
    run_id text not null,
    checkpoint text not null,
    source text,
    table_name text,
    dimension text not null
        check (dimension in ('completeness', 'uniqueness', 'validity', 'freshness')),
    score double precision not null,
    threshold double precision not null,
    observed double precision,
    rows_checked bigint,
    passed boolean not null,
    recorded_at timestamptz not null default now()
);

create table if not exists audit.api_pulls (
    run_id text not null,
    source text not null,
    resource_type text not null,
    cursor_from text,
    cursor_to text,
    pages integer not null,
    requests integer not null,
    rows_received integer not null,
    rows_loaded integer not null,
    rows_quarantined integer not null,
    rows_superseded integer not null,
    recorded_at timestamptz not null default now()
);

alter table audit.api_pulls add column if not exists validation_state text not null
    default 'pending' check (validation_state in ('pending', 'validating', 'validated'));
alter table audit.api_pulls add column if not exists validated_in text;

create table if not exists audit.publications (
    run_id text not null,
    build_schema text not null,
    relations text[] not null,
    published_at timestamptz not null default now()
);

-- What each build schema holds: dbt's artifacts (manifest, sources.json) of its last complete
-- build, and of the build planned now, so a build rebuilds only what changed since
-- (warehouse/build_plan.py).
create table if not exists audit.build_states (
    build_schema text not null,
    stage text not null check (stage in ('planned', 'built')),
    run_id text not null,
    fingerprint text not null,
    built_on date not null,
    manifest text not null,
    sources text not null,
    recorded_at timestamptz not null default now(),
    primary key (build_schema, stage)
);

create table if not exists quarantine.rejected_records (
    source text not null,
    file_name text not null,
    file_hash text not null,
    record_position integer not null,
    rule text not null,
    reason text not null,
    record jsonb not null,
    run_id text,
    quarantined_at timestamptz not null default now()
);
alter table quarantine.rejected_records owner to loader;
-- landing: the record broke a rule of ingestion/rules/ on its way in; after_landing: a check of
-- the landed checkpoint (expectations/quality.yml) moved it out of its raw table.
alter table quarantine.rejected_records add column if not exists stage text not null
    default 'landing' check (stage in ('landing', 'after_landing'));

-- Each quarantined record has an id a steward names to re-submit it corrected
-- (hcw resubmit); the corrected record lands as a file of its own.
alter table quarantine.rejected_records add column if not exists record_id bigint
    generated always as identity;
create unique index if not exists rejected_records_record_id
    on quarantine.rejected_records (record_id);
create table if not exists quarantine.resubmissions (
    record_id bigint primary key references quarantine.rejected_records (record_id),
    file_name text not null,
    file_hash text not null,
    resubmitted_by text not null default current_user,
    resubmitted_at timestamptz not null default now()
);
alter table quarantine.resubmissions owner to loader;

-- Every quarantined record of the pipeline, with its reason and where its correction stands:
-- waiting, resubmitted (its file not landed yet), reconciled (landed and loaded) or quarantined
-- again. Stewards only: records are raw PHI.
create or replace view quarantine.quarantined_records as
select
    records.record_id,
    records.source,
    records.stage,
    records.file_name,
    records.record_position,
    records.rule,
    records.reason,
    records.run_id,
    records.quarantined_at,
    resubmissions.file_name as resubmitted_as,
    resubmissions.resubmitted_by,
    resubmissions.resubmitted_at,
    case
        when resubmissions.record_id is null then 'waiting'
        when ledger.file_hash is null then 'resubmitted'
        when ledger.rows_loaded > 0 then 'reconciled'
        else 'quarantined again'
    end as status,
    records.record
from quarantine.rejected_records as records
left join quarantine.resubmissions as resubmissions
    on records.record_id = resubmissions.record_id
left join audit.file_ledger as ledger
    on resubmissions.file_hash = ledger.file_hash;
alter view quarantine.quarantined_records owner to loader;
revoke all on quarantine.quarantined_records from public;

grant select, insert, update on audit.pipeline_runs to loader;
grant select, insert, update on audit.file_ledger to loader;
grant select, insert, update on audit.api_pulls to loader;
grant select, insert, update on audit.task_failures to loader;
grant select, insert on audit.gate_results, audit.quality_scores to loader, transformer;
grant select, insert on audit.dbt_node_results, audit.publications to transformer;
grant select, insert, update, delete on audit.build_states to transformer;
grant select on audit.file_ledger, audit.pipeline_runs, audit.api_pulls to transformer;
grant select on all tables in schema audit to steward;
grant select on quarantine.rejected_records, quarantine.quarantined_records to steward;
grant select, insert on quarantine.resubmissions to steward;
-- Quarantined records are raw PHI that broke a rule: only loader and steward may read them.
revoke all on quarantine.rejected_records from transformer;
revoke usage on schema quarantine from transformer;

-- The vitals processor's schema (monitoring/), read by clinical operations.
-- Real-time monitoring (monitoring/): the vitals processor writes here as `monitor`;
-- clinical operations read the alerts and acknowledge them as `clinical_ops`; analysts never (ward,
-- room and exact times with a patient's key are no de-identified data).
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
