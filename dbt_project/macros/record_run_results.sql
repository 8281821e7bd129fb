{#- on-run-end: one row per node in audit.dbt_node_results, tagged with the pipeline's run id. -#}
{% macro record_run_results(results) %}
    {%- if execute and results | length > 0 -%}
        {%- set run_id = env_var('PIPELINE_RUN_ID', invocation_id) -%}
        {%- set build_schema = env_var('DBT_BUILD_SCHEMA', target.schema) -%}
        insert into audit.dbt_node_results
            (run_id, invocation_id, build_schema, unique_id, resource_type, status, failures)
        values
        {%- for result in results %}
            (
                '{{ run_id }}',
                '{{ invocation_id }}',
                '{{ build_schema }}',
                '{{ result.node.unique_id }}',
                '{{ result.node.resource_type }}',
                '{{ result.status }}',
                {{ result.failures if result.failures is not none else 'null' }}
            ){{ "," if not loop.last }}
        {%- endfor %}
    {%- else -%}
        select 1
    {%- endif -%}
{% endmacro %}
