-- 0024 What each build's FHIR reference resolution found (dbt_project/models/intermediate/fhir/
-- int_fhir_references_resolved.sql, its post-hook): how many references of each resource type,
-- element and form resolved, and how many did not and why. Counts only, no reference: the
-- quality report shows the latest build's by the small-cell rule (expectations/report.py).
create table if not exists audit.fhir_reference_counts (
    run_id text not null,
    invocation_id text not null,
    resource_type text not null,
    element text not null,
    reference_form text not null,
    outcome text not null check (
        outcome in (
            'resolved', 'not_found', 'other_server', 'ambiguous', 'wrong_type', 'unrecognised'
        )
    ),
    reference_count integer not null check (reference_count > 0),
    recorded_at timestamptz not null default now()
);
create index if not exists fhir_reference_counts_recorded_at
    on audit.fhir_reference_counts (recorded_at);

grant insert on audit.fhir_reference_counts to transformer;
grant select on audit.fhir_reference_counts to steward;
