-- 0005 Whose the FHIR records from before servers were keyed are (docs/runbook.md, "FHIR
-- servers"): the first configured server's pull names the raw resources of then its own and
-- records it here (ingestion/api_landing.py). dbt reads it to make the locked crosswalk's bare
-- FHIR ids that server's references, keeping their surrogate keys
-- (dbt_project/macros/fhir_reference.sql). At most one row.
create table audit.fhir_unkeyed_owner (
    server text not null,
    resources integer,  -- how many raw resources it named; null: named before this record
    named_at timestamptz not null default now(),
    only_row boolean primary key default true check (only_row)
);

-- A warehouse whose first server named them before this record was kept: that server's first
-- pull after its unnamed ones (another server's pull is refused while unnamed resources remain,
-- and records no pull).
insert into audit.fhir_unkeyed_owner (server, named_at)
select keyed.server, keyed.recorded_at
from audit.api_pulls as keyed
where keyed.source = 'fhir'
    and keyed.server is not null
    and exists (
        select 1 from audit.api_pulls as unkeyed
        where unkeyed.source = 'fhir' and unkeyed.server is null
    )
order by keyed.recorded_at
limit 1;

grant select, insert on audit.fhir_unkeyed_owner to loader;
grant select on audit.fhir_unkeyed_owner to transformer, steward;
