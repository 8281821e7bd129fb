{#-
    Post-hook of int_fhir_references_resolved: how many references of each kind this build
    resolved and how many it did not, by resource type, element, form and outcome, into
    audit.fhir_reference_counts (migration 0024) under the pipeline's run id. Counts only: the
    quality report shows them by the small-cell rule (expectations/report.py).
-#}
{% macro record_fhir_reference_counts() -%}
    insert into audit.fhir_reference_counts
        (run_id, invocation_id, resource_type, element, reference_form, outcome, reference_count)
    select
        '{{ env_var('PIPELINE_RUN_ID', invocation_id) | replace("'", "''") }}',
        '{{ invocation_id }}',
        resource_type,
        element,
        reference_form,
        outcome,
        count(*)
    from {{ this }}
    group by resource_type, element, reference_form, outcome
{%- endmacro %}
