-- Schemas, their owners and who may read them. Idempotent: applied on every start.
-- Raw and quarantine hold PHI; staging and the crosswalk too. Analysts reach only `analytics`.

revoke all on database warehouse from public;
grant connect on database warehouse to loader, transformer, steward, analyst, monitor, clinical_ops;
grant create, temporary on database warehouse to loader, transformer;
revoke all on schema public from public;

-- dbt's incremental merges join a batch to a table of millions by its unique key: with
-- PostgreSQL's default random_page_cost (4, for spinning disks) the planner reads the whole
-- table instead of probing the index, so an incremental build would cost like a full one.
-- 1.1 is the usual setting for SSDs; set only for dbt's role, in this database.
alter role transformer in database warehouse set random_page_cost = 1.1;

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
-- (python -m ingestion.resubmit); the corrected record lands as a file of its own.
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

-- Upgrade in place: the vitals tables built before they had _built_at, their incremental
-- watermark, gain it (and its index). The first build after merges every reading once.
do $$
declare
    old_table record;
begin
    for old_table in
        select tables.table_schema, tables.table_name
        from information_schema.tables as tables
        where tables.table_schema in ('build_blue', 'build_green')
            and tables.table_name in (
                'deid_vital_readings', 'fct_vital_signs', 'fct_vital_signs_hourly', 'dim_facility'
            )
            and not exists (
                select 1 from information_schema.columns as columns
                where columns.table_schema = tables.table_schema
                    and columns.table_name = tables.table_name
                    and columns.column_name = '_built_at'
            )
    loop
        execute format(
            'alter table %I.%I add column _built_at timestamptz',
            old_table.table_schema, old_table.table_name
        );
        if old_table.table_name <> 'dim_facility' then
            execute format(
                'create index on %I.%I (_built_at)', old_table.table_schema, old_table.table_name
            );
        end if;
    end loop;
end
$$;

-- Upgrade in place: an hourly vitals table from before it kept each mean's sum and count gains
-- them, empty, and loses its watermark, so that its next build recomputes every hour.
do $$
declare
    old_table record;
    sign record;
begin
    for old_table in
        select tables.table_schema, tables.table_name
        from information_schema.tables as tables
        where tables.table_schema in ('build_blue', 'build_green')
            and tables.table_name = 'fct_vital_signs_hourly'
            and not exists (
                select 1 from information_schema.columns as columns
                where columns.table_schema = tables.table_schema
                    and columns.table_name = tables.table_name
                    and columns.column_name = '_heart_rate_bpm_sum'
            )
    loop
        for sign in
            select * from (values
                ('heart_rate_bpm', 'double precision'), ('systolic_mmhg', 'double precision'),
                ('diastolic_mmhg', 'double precision'), ('temperature_c', 'numeric'),
                ('oxygen_saturation_pct', 'double precision'),
                ('respiratory_rate_per_min', 'double precision')
            ) as signs (name, data_type)
        loop
            execute format(
                'alter table %I.%I add column %I bigint, add column %I %s',
                old_table.table_schema, old_table.table_name,
                '_' || sign.name || '_count', '_' || sign.name || '_sum', sign.data_type
            );
        end loop;
        execute format(
            'update %I.%I set _built_at = null', old_table.table_schema, old_table.table_name
        );
    end loop;
end
$$;
