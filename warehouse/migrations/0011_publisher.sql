-- 0011 The publisher: the gate and publishing run as `publisher`, not as `transformer`, which
-- builds. The role that builds a mart cannot pass its own gate, nor put anything in front of
-- analysts; the role that judges and publishes cannot change what it judges. `publisher` (a login
-- role, made by bootstrap like the others) reads the build schemas, the raw tables (the PHI scan
-- looks for their identifiers in what it would publish) and the audit tables the gate consults;
-- it writes only its gate's verdict and scores and the record of a publication, and owns
-- `analytics`, whose views `analyst` selects.

do $$
declare
    relation regclass;
begin
    execute format('grant connect on database %I to publisher', current_database());
    -- views an earlier publication made (as transformer) become the publisher's
    for relation in
        select c.oid::regclass from pg_class as c
        join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = 'analytics' and c.relkind in ('r', 'v', 'm')
    loop
        execute format('alter table %s owner to publisher', relation);
    end loop;
end
$$;
alter schema analytics owner to publisher;
alter default privileges for role transformer in schema analytics revoke select on tables from analyst;
alter default privileges for role publisher in schema analytics grant select on tables to analyst;

-- what it judges: the build schemas, as dbt (transformer) makes them
grant usage on schema build_blue, build_green to publisher;
grant select on all tables in schema build_blue, build_green to publisher;
alter default privileges for role transformer in schema build_blue, build_green
    grant select on tables to publisher;

-- what the PHI scan compares it with: the raw identifiers (not quarantine, which no build reads)
grant usage on schema raw_ehr, raw_claims, raw_vitals, raw_fhir, raw_research to publisher;
grant select on all tables in schema raw_ehr, raw_claims, raw_vitals, raw_fhir, raw_research
    to publisher;
alter default privileges for role loader in schema raw_ehr, raw_claims, raw_vitals, raw_fhir, raw_research
    grant select on tables to publisher;

-- the audit tables: the gate reads the landed verdict, the allow-list and dbt's node results,
-- and writes its own verdict and scores; publishing writes the publication. transformer no more.
grant usage on schema audit to publisher;
grant select on audit.gate_results, audit.quality_scores, audit.published_columns,
    audit.dbt_node_results, audit.publications to publisher;
grant insert on audit.gate_results, audit.quality_scores, audit.publications to publisher;
revoke insert on audit.gate_results, audit.quality_scores, audit.publications from transformer;
drop policy publish_gate_by_the_publish_gate on audit.gate_results;
drop policy publish_gate_by_the_publish_gate on audit.quality_scores;
create policy publish_gate_by_the_publish_gate on audit.gate_results for insert to publisher
    with check (checkpoint = 'publish_gate');
create policy publish_gate_by_the_publish_gate on audit.quality_scores for insert to publisher
    with check (checkpoint = 'publish_gate');
