{#-
    A published relation's version lives in its table's comment (post-hook of every model of the
    de-identified layer and the marts): `published version <N>`. A table built before its model
    had versions, or by another version under the same name, has another comment or none.
-#}
{% macro mark_published_version() -%}
    {%- if model.version is not none -%}
        comment on table {{ this }} is 'published version {{ model.version }}'
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}


{#-
    on-run-start of a build or run, for each selected versioned model: a table that the model is
    about to build but that holds another version's layout (one from before versions, or another
    version under the same name) is dropped, so that dbt builds the version whole instead of
    merging it into the old table (an incremental model keeps its table otherwise); and a table
    `<name>_v<N>` of a version the project no longer has (withdrawn at the end of its deprecation
    window) is dropped, so that nothing analysts could be given outlives its version. Through the
    adapter, which keeps dbt's relation cache true. Rows are rebuilt from staging; a random key of
    a table never rebuilt (deid_vital_readings.reading_key) is not kept: keys are stable within a
    version (docs/published_versions.md).
-#}
{% macro drop_replaced_versions() %}
    {%- if execute and flags.WHICH in ('build', 'run') -%}
        {%- set versioned = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
            | selectattr('version', 'ne', none) | list -%}
        {%- for node in versioned if node.unique_id in selected_resources -%}
            {%- set relation = adapter.get_relation(node.database, node.schema, node.alias) -%}
            {%- if relation is not none -%}
                {%- set found = run_query(
                    "select coalesce(obj_description('" ~ relation ~ "'::regclass, 'pg_class'), '')"
                ).columns[0].values()[0] -%}
                {%- if found != 'published version ' ~ node.version -%}
                    {{ log(relation ~ " holds another version of " ~ node.name
                        ~ " than " ~ node.version ~ ": dropped, to be built whole", info=true) }}
                    {%- do adapter.drop_relation(relation) -%}
                {%- endif -%}
            {%- endif -%}
            {%- if node.alias == node.name -%}  {#- the latest version (generate_alias_name) -#}
                {%- set current = versioned | selectattr('name', 'equalto', node.name)
                    | map(attribute='alias') | list -%}
                {%- set tables = run_query(
                    "select table_name from information_schema.tables where table_schema = '"
                    ~ node.schema ~ "' and table_name ~ '^" ~ node.name ~ "_v[0-9]+$'"
                ).columns[0].values() -%}
                {%- for table in tables if table not in current -%}
                    {%- set withdrawn = adapter.get_relation(node.database, node.schema, table) -%}
                    {{ log(withdrawn ~ " is a version of " ~ node.name
                        ~ " the project no longer has: dropped", info=true) }}
                    {%- do adapter.drop_relation(withdrawn) -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{% endmacro %}
