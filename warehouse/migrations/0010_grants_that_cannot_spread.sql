-- 0010 Grants that cannot spread. `loader` and `transformer` must own what they build (dlt adds
-- columns to its tables, dbt swaps a rebuilt table in by renaming: both need ownership), and an
-- owner may grant what it owns to anyone: loader its raw PHI tables to `analyst`, transformer the
-- crosswalk. From here only the administrator (a superuser) grants and revokes; working roles
-- build inside the schemas the migrations made and cannot make new ones.

-- The refusal: an event trigger, before GRANT, REVOKE and ALTER DEFAULT PRIVILEGES run, refuses
-- them for a session that did not log in as a superuser (session_user, so that neither SET ROLE
-- nor a security-definer function changes who asked). Event triggers see no shared object:
-- grants on databases and roles stay the database owner's and the administrator's, never a
-- working role's (none owns a database).
create function audit.refuse_grants_by_working_roles() returns event_trigger
language plpgsql
as $$
begin
    if not exists (select 1 from pg_roles where rolname = session_user and rolsuper) then
        raise exception '% refused for role %: only the warehouse administrator grants and revokes',
            tg_tag, session_user
            using errcode = 'insufficient_privilege',
                hint = 'What a role may read is set by the migrations (warehouse/migrations), '
                    'or by the administrator (docs/runbook.md).';
    end if;
end
$$;
revoke all on function audit.refuse_grants_by_working_roles() from public;

create event trigger refuse_grants_by_working_roles on ddl_command_start
    when tag in ('GRANT', 'REVOKE', 'ALTER DEFAULT PRIVILEGES')
    execute function audit.refuse_grants_by_working_roles();

-- Publishing granted each analytics view to `analyst` as it made it; now the administrator's
-- default privileges do (a view is a table to them).
alter default privileges for role transformer in schema analytics grant select on tables to analyst;

-- dlt's staging datasets (merge and replace load through `<dataset>_staging`), made here so that
-- no working role needs CREATE on the database; dbt makes a schema only when it is missing, and
-- every one it builds into is made by 0001.
create schema if not exists raw_ehr_staging authorization loader;
create schema if not exists raw_claims_staging authorization loader;
create schema if not exists raw_vitals_staging authorization loader;
create schema if not exists raw_fhir_staging authorization loader;
create schema if not exists raw_research_staging authorization loader;
do $$
begin
    -- TEMPORARY stays: dbt's incremental merges and dlt's loads stage through temporary tables
    execute format('revoke create on database %I from loader, transformer', current_database());
end
$$;

-- Audit tables written only through the steps that own them: the landing gate (`loader`) records
-- the `landed` checkpoint, the publish gate (`transformer`) `publish_gate`, and neither the
-- other's verdict or scores.
alter table audit.gate_results enable row level security;
create policy readable_by_whom_the_grants_allow on audit.gate_results for select using (true);
create policy landed_by_the_landing_gate on audit.gate_results for insert to loader
    with check (checkpoint = 'landed');
create policy publish_gate_by_the_publish_gate on audit.gate_results for insert to transformer
    with check (checkpoint = 'publish_gate');
alter table audit.quality_scores enable row level security;
create policy readable_by_whom_the_grants_allow on audit.quality_scores for select using (true);
create policy landed_by_the_landing_gate on audit.quality_scores for insert to loader
    with check (checkpoint = 'landed');
create policy publish_gate_by_the_publish_gate on audit.quality_scores for insert to transformer
    with check (checkpoint = 'publish_gate');
