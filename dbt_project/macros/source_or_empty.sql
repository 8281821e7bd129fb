{#-
    A raw table, or an empty relation with its declared columns when the source has never landed
    (a hospital without a FHIR server, a first build before the claims arrive), so the rest of the
    warehouse builds on what did land. Columns take their `data_type` from the source's yml,
    text when it declares none. dbt's lineage still records the source.
-#}
{% macro source_or_empty(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {#- in a unit test, source() is the test's fixture, which always exists -#}
    {%- set is_fixture = model.resource_type == 'unit_test' or relation.schema is none -%}
    {%- if execute and not is_fixture and load_relation(relation) is none -%}
        {%- set declared = graph.sources.values()
            | selectattr('source_name', 'equalto', source_name)
            | selectattr('name', 'equalto', table_name)
            | first -%}
        (
            select
            {%- for column in declared.columns.values() %}
                null::{{ column.data_type or 'text' }} as {{ adapter.quote(column.name) }}
                {{- "," if not loop.last }}
            {%- endfor %}
            where false
        ) as never_landed_{{ table_name }}
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}
