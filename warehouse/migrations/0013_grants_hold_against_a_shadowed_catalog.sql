-- 0013 The refusal of 0010 could be talked out of: its function named pg_roles unqualified, so a
-- working role's temporary view (or a view in a schema it owns, first on its search_path) called
-- pg_roles, saying it was a superuser, let its GRANT through (found by a hostile review). The
-- function now resolves every name in pg_catalog only.
create or replace function audit.refuse_grants_by_working_roles() returns event_trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if not exists (
        select 1 from pg_catalog.pg_roles as roles
        where roles.rolname operator(pg_catalog.=) session_user and roles.rolsuper
    ) then
        raise exception '% refused for role %: only the warehouse administrator grants and revokes',
            tg_tag, session_user
            using errcode = 'insufficient_privilege',
                hint = 'What a role may read is set by the migrations (warehouse/migrations), '
                    'or by the administrator (docs/runbook.md).';
    end if;
end
$$;

-- The publisher judges and publishes; it no longer reads raw PHI (the gate's PHI scan reads raw as
-- transformer): the role that owns what analysts see cannot put raw rows in front of them.
revoke select on all tables in schema raw_ehr, raw_claims, raw_vitals, raw_fhir, raw_research
    from publisher;
revoke usage on schema raw_ehr, raw_claims, raw_vitals, raw_fhir, raw_research from publisher;
alter default privileges for role loader in schema raw_ehr, raw_claims, raw_vitals, raw_fhir, raw_research
    revoke select on tables from publisher;

-- Large objects are storage no quota bounds, and no role of the product uses them.
revoke execute on function pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer),
    pg_catalog.lo_from_bytea(oid, bytea), pg_catalog.lo_import(text),
    pg_catalog.lo_import(text, oid), pg_catalog.lowrite(integer, bytea),
    pg_catalog.lo_put(oid, bigint, bytea) from public;
