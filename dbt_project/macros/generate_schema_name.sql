{#-
    Models with a custom schema (staging, deidentified, crosswalk) build there, under that exact
    name. Everything else builds into the build schema of this run, DBT_BUILD_SCHEMA, which the
    pipeline sets to whichever of build_blue and build_green is not published.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ env_var('DBT_BUILD_SCHEMA', target.schema) | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
