{#-
    Models with a custom schema (staging, deidentified, crosswalk) build there, under that exact
    name. Everything else builds into the build schema of this run, DBT_BUILD_SCHEMA, which the
    pipeline sets to whichever of build_blue and build_green is not published.

    A limited data set (var deid_policy limited_data_set) builds only into a schema of its own,
    lds_<agreement>, which its agreement's recipients alone may read (warehouse/limited_data_set.py,
    `hcw limited-data-set`): never into a build schema analysts are given.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {%- set build_schema = env_var('DBT_BUILD_SCHEMA', target.schema) | trim -%}
        {%- if var('deid_policy', 'safe_harbor') == 'limited_data_set'
            and not build_schema.startswith('lds_') -%}
            {{ exceptions.raise_compiler_error(
                "a limited data set builds into a schema of its own, lds_<agreement>, readable by"
                ~ " the agreement's recipients only (hcw limited-data-set build <agreement>), never"
                ~ " into " ~ build_schema
            ) }}
        {%- endif -%}
        {{ build_schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
