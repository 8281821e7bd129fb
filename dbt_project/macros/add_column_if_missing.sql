{#-
    Upgrades an incremental table in place when a newer version of its model reads a column of
    its own table that the table, built before, lacks (dbt's on_schema_change adds new columns
    only after the model's query has run against the old table). As a pre-hook:
        pre_hook="{{ add_column_if_missing('_built_at', 'timestamptz') }}"
    Adds the column (empty for the rows already there) and, when `indexed`, an index on it.
-#}
{% macro add_column_if_missing(column_name, data_type, indexed=true) %}
    {%- if execute and not should_full_refresh() -%}
        {%- set existing = adapter.get_relation(this.database, this.schema, this.identifier) -%}
        {%- if existing is not none
            and column_name not in adapter.get_columns_in_relation(existing) | map(attribute='name') -%}
            alter table {{ existing }} add column {{ column_name }} {{ data_type }};
            {%- if indexed %}
            create index on {{ existing }} ({{ column_name }});
            {%- endif %}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
