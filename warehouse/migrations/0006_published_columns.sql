-- 0006 What analysts may select of each build schema: the allow-list its last dbt build
-- recorded (dbt_project/macros/record_published_columns.sql, from each model's
-- `meta: {published: true}` and its documented columns). Publishing exposes these relations and
-- columns only (warehouse/publish.py); the gate fails a build schema holding a relation that looks
-- published but is not listed (expectations/gate.py).
create table audit.published_columns (
    build_schema text not null,
    relation text not null,
    columns text[] not null,
    reads_sources boolean not null,  -- else it holds code sets only: no raw value can reach it
    recorded_in text not null,  -- the pipeline run whose build recorded it
    recorded_at timestamptz not null default now(),
    primary key (build_schema, relation)
);

grant select, insert, delete on audit.published_columns to transformer;
grant select on audit.published_columns to steward;
